"""Gated promotion: champion and challenger scored on the same evaluation data.

A version registered with an evaluation run (``registry.EVAL_RUN_TAG``) carries a reference to
the train/test parts it was measured on. ``challenge`` scores the current challenger and the
current champion on the challenger's parts and moves ``champion`` only when the challenger is
better by the margin; ``gate`` does the same for a version whose score is already known (the
training flow). Both record the decision and both scores on the version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from recsys_core.config import Settings
from recsys_core.data.interactions import InteractionData
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.evaluation.limits import eval_users
from recsys_core.lifecycle.registry import (
    CHALLENGER,
    CHAMPION,
    EVAL_RUN_TAG,
    alias_version,
    client,
    load_version,
    promote,
)
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.runstore import RunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """The outcome of one promotion check.

    Args:
        version: the challenger version.
        promoted: whether it is champion now.
        challenger_score: its NDCG@k on the evaluation data.
        champion_score: the champion's on the same data (None without a champion).
        champion_version: the champion before the check (None without one).
        metric: the compared metric (``ndcg@K``).
        reason: one line for people.
    """

    version: str
    promoted: bool
    challenger_score: float
    champion_score: float | None
    champion_version: str | None
    metric: str
    reason: str


@dataclass(frozen=True)
class EvaluationData:
    """Train (seen items) and test parts shared by both sides of a comparison.

    Args:
        train: the interactions the challenger was trained on (excluded from rankings).
        test: held-out interactions over the same vocabularies.
        k: the metric cut-off.
    """

    train: InteractionData
    test: InteractionData
    k: int


def score_model(model: HybridRecommender, data: EvaluationData) -> float:
    """NDCG@k of ``model``'s fusion on ``data`` (users or items it never saw score NaN).

    The one scoring rule of a comparison: the test users are the seeded sample of at most
    ``eval_users(n_items)`` that the training run's evaluation ranks (``evaluate_run``), so a
    champion scored here and a challenger scored by its report are measured on the same users.

    Args:
        model: the recommender.
        data: the evaluation data.
    """
    evaluation = evaluate({"model": model.fusion}, data.train, data.test, k=data.k,
                          max_users=eval_users(data.train.n_items))
    return float(evaluation.metrics["model"][f"ndcg@{data.k}"])


def run_data(run: str, k: int) -> EvaluationData:
    """The train and test parts of a training run folder.

    Args:
        run: a ``RunStore`` folder.
        k: the metric cut-off.
    """
    store = RunStore(run)
    return EvaluationData(store.data("train"), store.data("test"), k)


def gate(settings: Settings, version: str, challenger_score: float, data: EvaluationData,
         margin: float = 0.0) -> Decision:
    """Score the current champion on ``data`` and promote ``version`` if it beats it.

    Args:
        settings: project settings (model name, tracking store).
        version: the challenger version (already scored on ``data``).
        challenger_score: its NDCG@k on ``data``.
        data: the evaluation data.
        margin: relative improvement required (0.01 = 1% better).
    """
    mlc = client(settings)
    name = settings.model_name
    metric = f"ndcg@{data.k}"
    current = alias_version(mlc, name, CHAMPION)
    if current is not None and str(current.version) == str(version):
        return Decision(str(version), True, challenger_score, challenger_score, str(version),
                        metric, f"version {version} is already champion")
    champion_score = None
    if current is not None:
        champion = load_version(settings, str(current.version))
        champion_score = score_model(champion, data)
    promoted = promote(mlc, name, str(version), challenger_score, champion_score, margin,
                       metric)
    old = None if current is None else str(current.version)
    if old is None:
        reason = f"no champion yet: version {version} becomes champion"
    elif promoted:
        reason = (f"version {version} beats champion {old} on {metric} "
                  f"({challenger_score:.4f} vs {champion_score:.4f}, margin {margin:g})")
    else:
        reason = (f"version {version} does not beat champion {old} on {metric} "
                  f"({challenger_score:.4f} vs {champion_score:.4f}, margin {margin:g})")
    log.info(reason)
    return Decision(str(version), promoted, challenger_score, champion_score, old, metric,
                    reason)


def challenge(settings: Settings, margin: float = 0.0, k: int | None = None,
              data: EvaluationData | None = None) -> Decision:
    """Compare the ``challenger`` with the ``champion`` and promote it if it is better.

    Args:
        settings: project settings.
        margin: relative improvement required.
        k: metric cut-off (default: the challenger's ``k`` tag, else 10).
        data: evaluation data; by default the challenger's evaluation run.

    Raises:
        LookupError: no challenger, or no evaluation data for it.
    """
    mlc = client(settings)
    challenger = alias_version(mlc, settings.model_name, CHALLENGER)
    if challenger is None:
        raise LookupError(f"model {settings.model_name!r} has no challenger: run "
                          "`recsys train` first")
    if data is None:
        run = challenger.tags.get(EVAL_RUN_TAG)
        if not run or not RunStore(run).has_part("test"):
            raise LookupError(f"challenger version {challenger.version} has no evaluation "
                              f"data (tag {EVAL_RUN_TAG!r}: {run!r})")
        data = run_data(run, k or int(challenger.tags.get("k", 10)))
    elif k is not None and k != data.k:
        data = EvaluationData(data.train, data.test, k)
    model = load_version(settings, str(challenger.version))
    return gate(settings, str(challenger.version), score_model(model, data), data, margin)
