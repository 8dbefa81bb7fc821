"""The training pipeline's stages as plain functions, one per restartable step.

Each stage reads its inputs from a ``RunStore`` (or the warehouse), does one job, and writes
its output back, so an orchestrator can call them as tasks that pass references, and a
benchmark can call them in one process to measure the orchestration's overhead.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from recsys_core.cf.implicit_models import ALS
from recsys_core.config import Settings
from recsys_core.data.interactions import InteractionData
from recsys_core.deep.projector import ContentProjector
from recsys_core.deep.user_encoder import UserEncoder
from recsys_core.deep.user_history import UserHistory
from recsys_core.embed.cache import EmbeddingCache
from recsys_core.embed.config import EncoderConfig
from recsys_core.embed.encoder import TextEncoder
from recsys_core.embed.engine import EmbeddingRun, run_embedding
from recsys_core.evaluation.evaluator import (
    Evaluation,
    cold_candidate_items,
    evaluate,
    rank_users,
    test_rows,
)
from recsys_core.evaluation.limits import eval_users
from recsys_core.evaluation.metrics import cutoffs
from recsys_core.evaluation.report import BestSingle, FusionSection, RunReport, build_report
from recsys_core.evaluation.significance import paired_test
from recsys_core.fusion.search import SPACES, tune_source
from recsys_core.fusion.tuner import Carve, TuningResult, tune
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.runstore import Part, RunStore
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions
from recsys_core.training import BASELINES, CONTENT_SOURCES, TrainingConfig, make_source
from recsys_core.warehouse.features import build_features
from recsys_core.warehouse.store import Warehouse

log = logging.getLogger(__name__)

S = TypeVar("S", bound=Scorer)


def prepare_run(settings: Settings, snapshot_id: str, protocol: str, seed: int,
                carves: int = 1) -> RunStore:
    """Build features of a warehouse snapshot and split them into the run's parts.

    Args:
        settings: project settings (warehouse path, state folder).
        snapshot_id: the snapshot to train on.
        protocol: evaluation protocol.
        seed: split seed.
        carves: validation carves of the training part (``RunStore.prepare``).
    """
    features = build_features(Warehouse(settings.warehouse_path), snapshot_id)
    return RunStore.prepare(features, protocol, seed, settings.runs_dir, carves)


def embed_items(store: RunStore, settings: Settings, encoder: str,
                progress: Callable[[int, int], None] | None = None
                ) -> tuple[EmbeddingRun, Path]:
    """Embed the run's item documents through the warehouse's embedding cache.

    Args:
        store: the run.
        settings: project settings (warehouse path, device).
        encoder: encoder name or local path.
        progress: ``progress(done, total)`` callback.

    Returns:
        The embedding run's statistics and the path of the stored embeddings.
    """
    text_encoder = TextEncoder(EncoderConfig(name_or_path=encoder, device=settings.device))
    result = run_embedding(store.documents(), text_encoder,
                           EmbeddingCache(settings.warehouse_path), progress=progress)
    return result, store.save_embeddings(result.embeddings, text_encoder.encoder_id)


def train_source(store: RunStore, name: str, params: Mapping[str, Any], part: Part,
                 options: TrainOptions, embeddings: str | Path | None = None) -> Path:
    """Train one source on a part of the run and store it; returns the pickle's path.

    Args:
        store: the run.
        name: source name (see ``recsys_core.training.SOURCES``).
        params: the source's config fields.
        part: a carve's fit part (for tuning) or ``train`` (for the final model).
        options: seed and device.
        embeddings: item embeddings from ``embed_items`` (needed by content sources).
    """
    data = store.data(part, embeddings)
    if name in CONTENT_SOURCES and data.item_embeddings is None:
        raise ValueError(f"source {name!r} needs item embeddings; run the embedding stage first")
    scorer = make_source(name, dict(params))
    if isinstance(scorer, ContentProjector):
        scorer = ContentProjector(scorer.config, als=_stored(store, part, ALS, scorer.config.als))
    if isinstance(scorer, UserHistory):
        scorer = UserHistory(scorer.config,
                             encoder=_stored(store, part, UserEncoder, scorer.config.encoder))
    if part == "train":
        _warm_start(store, scorer)
    return store.save_scorer(scorer.train(data, options), part)


def _warm_start(store: RunStore, scorer: Scorer) -> None:
    """Start a refit on ``train`` from the same source trained on the first carve's fit part.

    The fit part is a subset of ``train`` and never holds test data, so the refit sees
    nothing the evaluation could be biased by; a deep source then needs a few epochs instead
    of a full training.
    """
    if type(scorer).warm_start is Scorer.warm_start:  # it never starts from a model: do not
        return  # load one (an EASE pickle holds an items x items matrix)
    path = store.scorer_path(store.carves()[0][0], scorer.name)
    if not path.exists():
        return
    previous = RunStore.load_scorer(path)
    if previous.config == scorer.config and scorer.warm_start(previous):
        log.info("%s refit starts from its %s model", scorer.name, path.name)


def _stored(store: RunStore, part: Part, kind: type[S], config: ScorerConfig) -> S | None:
    """The run's ``kind`` source trained on ``part``, when its config is ``config``.

    A source built on another one reuses that fit instead of training an identical one
    (same data, same seed): the projector regresses onto ALS's item factors (about a minute
    at 10M interactions), and the user history reads the user encoder's network.
    """
    path = store.scorer_path(part, kind.name)
    if not path.exists():
        return None
    stored = RunStore.load_scorer(path)
    return stored if isinstance(stored, kind) and stored.config == config else None


def sized_sources(store: RunStore, sources: Mapping[str, Mapping[str, Any]]
                  ) -> dict[str, dict[str, Any]]:
    """The sources whose size guard accepts the run; the others are dropped, reason logged.

    The guard is a config's ``max_items`` (EASE's dense item x item matrices) against the
    items with training interactions, so a large catalogue still trains every other source.

    Args:
        store: the run.
        sources: source name -> its config fields.
    """
    warm = int((store.data("train").matrix.getnnz(axis=0) > 0).sum())
    kept = {}
    for name, params in sources.items():
        limit = getattr(make_source(name, dict(params)).config, "max_items", None)
        if limit is not None and warm > limit:
            log.warning("source %s skipped: %d warm items exceed its max_items=%d (dense "
                        "O(items^2) memory)", name, warm, limit)
            continue
        kept[name] = dict(params)
    return kept


def size_plan(store: RunStore, config: TrainingConfig, large_run: int) -> TrainingConfig:
    """The training config this run's size allows.

    Sources over their size guard are dropped (``sized_sources``). Above ``large_run``
    training interactions the run also skips the per-source hyperparameter search (each
    trial is a full fit), tunes the fusion on one validation carve, and skips the refit on
    ``train`` (the sources trained on ``fit`` for the fusion tuner are the final ones,
    without the validation slice): together they more than double the training time, for a
    gain that shrinks as the data grows.

    Args:
        store: the run.
        config: the requested config.
        large_run: the training-interaction count above which a run counts as large
            (``Settings.large_run``).
    """
    update: dict[str, Any] = {"sources": sized_sources(store, config.sources)}
    rows = store.meta["rows"]["train"]
    if rows > large_run and (config.source_trials or config.refit or config.carves > 1):
        log.warning("large run (%d training interactions > %d): no per-source search, one "
                    "validation carve, no refit", rows, large_run)
        update |= {"source_trials": 0, "refit": False, "carves": 1}
    return config.model_copy(update=update)


def load_sources(paths: Mapping[str, str | Path]) -> dict[str, Scorer]:
    """Read pickled sources by name.

    Args:
        paths: source name -> pickle path.
    """
    return {name: RunStore.load_scorer(path) for name, path in paths.items()}


def tune_fusion(store: RunStore, carve_paths: Sequence[Mapping[str, str | Path]], k: int,
                trials: int, seed: int) -> TuningResult:
    """Tune fusion weights on the run's validation carves.

    Args:
        store: the run.
        carve_paths: per carve (``RunStore.carves`` order), source name -> pickle of that
            source trained on the carve's fit part.
        k: cut-off of the tuned metric.
        trials: Optuna trials.
        seed: sampler seed.
    """
    return tune(load_carves(store, carve_paths), k=k, trials=trials, seed=seed)


def load_carves(store: RunStore, carve_paths: Sequence[Mapping[str, str | Path]]
                ) -> list[Carve]:
    """The run's validation carves, each with its sources read from their pickles.

    Args:
        store: the run.
        carve_paths: per carve (``RunStore.carves`` order), source name -> pickle of that
            source trained on the carve's fit part.
    """
    carves = []
    for (fit_part, valid_part), paths in zip(store.carves(), carve_paths, strict=False):
        sources = load_sources(paths)
        fusion = WeightedFusion(FusionConfig(weights=dict.fromkeys(sources, 1.0)), sources)
        fit = store.data(fit_part)
        carves.append(Carve(fusion.train(fit), fit, store.data(valid_part)))
    return carves


def tune_sources(store: RunStore, sources: Mapping[str, Mapping[str, Any]],
                 options: TrainOptions, trials: int, k: int = 10) -> dict[str, dict[str, Any]]:
    """Tune each searchable source's key hyperparameters alone on ``fit`` -> ``valid``.

    Sources without a search space (``recsys_core.fusion.search.SPACES``) keep their params.
    With ``trials`` 0 nothing is searched, nor when no validation item has a ``fit``
    interaction (``cold_items``): collaborative sources score 0 there whatever their params.

    Args:
        store: the run.
        sources: source name -> its given config fields.
        options: seed and device.
        trials: fits per searchable source (the given params are the first).
        k: cut-off of the tuned metric.
    """
    out = {name: dict(params) for name, params in sources.items()}
    names = [name for name in sources if name in SPACES]
    if trials < 1 or not names:
        return out
    fit, valid = store.data("fit"), store.data("valid")
    if valid.matrix[:, fit.matrix.getnnz(axis=0) > 0].nnz == 0:
        log.info("no validation item is warm in the fit part: source params kept")
        return out
    for name in names:
        result = tune_source(functools.partial(make_source, name), name, sources[name], fit,
                             valid, options, trials, k)
        out[name] = result.params
    return out

@dataclass(frozen=True)
class FinalModel:
    """The evaluated hybrid model.

    Args:
        model: the recommender built on the whole training part.
        evaluation: test metrics of every source, the baselines and ``fused``.
        model_dir: where the model was saved.
    """

    model: HybridRecommender
    evaluation: Evaluation
    model_dir: Path


def evaluate_run(store: RunStore, source_paths: Mapping[str, str | Path],
                 baseline_paths: Mapping[str, str | Path], fusion: FusionConfig,
                 k: int | Sequence[int],
                 meta: Mapping[str, Any] | None = None, encoder: str | None = None,
                 embeddings: str | Path | None = None,
                 ranked: Sequence[str | Path] | None = None) -> FinalModel:
    """Fuse the sources trained on ``train``, evaluate everything on ``test``, save the model.

    Args:
        store: the run.
        source_paths: fused source name -> pickle trained on ``train``.
        baseline_paths: baseline name -> pickle trained on ``train`` (reported, not fused).
        fusion: the tuned fusion config.
        k: metric cut-off, or several (the first is the main one).
        meta: extra metadata saved beside the model.
        encoder: the text encoder that embedded the items; the model loads it for text queries.
        embeddings: the run's item embeddings (``embed_items``), kept by the model for text
            queries and cold items.
        ranked: files from ``rank_test_users`` covering every test user in order (shards
            ranked elsewhere); ``None`` ranks here.
    """
    train = store.data("train", embeddings)
    fused, scorers = _evaluation_scorers(train, source_paths, baseline_paths, fusion)
    lists = None
    if ranked is not None:
        shards = [np.load(path) for path in ranked]
        lists = {ranking: {name: np.concatenate([shard[f"{ranking}/{name}"] for shard in shards])
                           for name in scorers}
                 for ranking in {key.split("/", 1)[0] for key in shards[0].files}}
    evaluation = evaluate(scorers, train, store.data("test"), k=k, ranked=lists,
                          max_users=eval_users(train.n_items),
                          cold_candidates=_cold_candidates(store))
    model = HybridRecommender(fused, train, encoder=encoder)
    model_dir = model.save(store.model_dir, {**store.meta, **(meta or {})})
    return FinalModel(model, evaluation, model_dir)


def evaluation_users(store: RunStore) -> int:
    """How many test users ``evaluate_run`` ranks (``rank_test_users`` shards this range).

    Args:
        store: the run.
    """
    train = store.data("train")
    return len(test_rows(train, store.data("test"), eval_users(train.n_items)))


def rank_test_users(store: RunStore, source_paths: Mapping[str, str | Path],
                    baseline_paths: Mapping[str, str | Path], fusion: FusionConfig,
                    k: int | Sequence[int], start: int, stop: int,
                    embeddings: str | Path | None = None) -> Path:
    """Rank test users ``start`` to ``stop`` (of ``evaluation_users``) with every model.

    The top-``k`` lists go to an ``.npz`` file in the run, named by the models, the fusion
    and the range; ``evaluate_run(ranked=...)`` reads the shards back.

    Args:
        store: the run.
        source_paths: fused source name -> pickle trained on ``train``.
        baseline_paths: baseline name -> pickle trained on ``train``.
        fusion: the tuned fusion config.
        k: the cut-off, or several: the lists are the largest long.
        start: first test user.
        stop: one past the last test user.
        embeddings: the run's item embeddings.
    """
    train = store.data("train", embeddings)
    _, scorers = _evaluation_scorers(train, source_paths, baseline_paths, fusion)
    test = store.data("test")
    rows = test_rows(train, test, eval_users(train.n_items))[start:stop]
    depth = max(cutoffs(k))
    cold = cold_candidate_items(train, test) if _cold_candidates(store) else None
    lists = rank_users(scorers, train, rows, depth, cold_items=cold)
    key = json.dumps([{n: str(p) for n, p in source_paths.items()},
                      {n: str(p) for n, p in baseline_paths.items()}, fusion.model_dump(), depth],
                     sort_keys=True)
    return store.save_ranked(key, start, stop, lists)


def _cold_candidates(store: RunStore) -> bool:
    """Whether the run also ranks its cold items alone (``cold_items``: ``cold_candidates``)."""
    return store.meta["protocol"] == "cold_items"


def _evaluation_scorers(train: InteractionData, source_paths: Mapping[str, str | Path],
                        baseline_paths: Mapping[str, str | Path], fusion: FusionConfig
                        ) -> tuple[WeightedFusion, dict[str, Scorer]]:
    """The fusion over the sources, and by name: ``fused``, each source, each baseline."""
    sources = load_sources(source_paths)
    fused = WeightedFusion(fusion, sources).train(train)
    return fused, {"fused": fused, **fused.sources, **load_sources(baseline_paths)}


def report_run(final: FinalModel, dataset: str, protocol: str, k: int, fusion: FusionConfig
               ) -> RunReport:
    """The DESIGN.md report of an evaluated run (``run_report`` adds the rest of the run).

    The fusion section also carries a paired bootstrap test of ``fused`` against the best
    single source on per-user NDCG.

    Args:
        final: the evaluated model.
        dataset: dataset name.
        protocol: evaluation protocol.
        k: the main metric cut-off (``final.evaluation.k``).
        fusion: the fusion config used.
    """
    evaluation = final.evaluation
    best = evaluation.best(exclude=("fused", *BASELINES))
    test = paired_test(evaluation, "fused", best)
    section = FusionSection(
        weights=fusion.weights, normaliser=fusion.normaliser, missing=fusion.missing,
        readouts=fusion.readouts or None,
        vs_best_single=BestSingle(source=best, mean_diff=test.mean_diff, ci_low=test.ci_low,
                                  ci_high=test.ci_high, p_bootstrap=test.p_bootstrap,
                                  p_wilcoxon=test.p_wilcoxon))
    return build_report(dataset, protocol, k, evaluation, section, {}, None)
