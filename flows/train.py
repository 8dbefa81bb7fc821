"""The training flow: ingest -> features -> embed -> sources -> fusion -> evaluate -> register."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from uuid import UUID

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from flows.embed import embed
from flows.evaluate import evaluate
from flows.exclusive import exclusive
from recsys_core import workers
from recsys_core.config import get_settings
from recsys_core.evaluation.metrics import cutoffs
from recsys_core.evaluation.report import RunReport, run_report
from recsys_core.runstore import Part, RunStore
from recsys_core.training import BASELINES, TrainingConfig, train_side_by_side
from tasks.embed import check_encoder
from tasks.evaluate import publish
from tasks.ingest import ingest
from tasks.register import promote, register
from tasks.train import TunedFusion, prepare, size_guard, train_source, tune_fusion
from tasks.tune import tune_sources

_TIMINGS_LOCK = threading.Lock()


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    with _TIMINGS_LOCK:  # the carves' threads add to the same sources' seconds
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 3)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


@flow(name="train", persist_result=True, result_storage=get_settings().results_dir)
@exclusive
def train_flow(data: str = "synthetic", protocol: str = "stratified", k: int | list[int] = 10,
               encoder: str | None = None, register_model: bool = True,
               trials: int | None = None, seed: int | None = None,
               report_path: str | None = None, data_docs: bool = False) -> RunReport:
    """Train, evaluate and register the hybrid recommender; returns the report.

    ``k`` is the metric cut-off, or several (``[10, 20]``): the report holds every metric at
    each, and the first drives tuning and promotion. Finished stages persist their results
    under RECSYS_HOME, so a rerun after a crash takes them from the cache and computes only
    what is left.
    """
    logger = get_run_logger()
    settings = get_settings()
    ks = list(cutoffs(k))
    config = TrainingConfig(protocol=protocol, k=ks[0],
                            seed=settings.seed if seed is None else seed,
                            trials=settings.tuning_trials if trials is None else trials)
    encoder = encoder or settings.encoder
    timings: dict[str, float] = {}
    check_encoder(encoder)
    with _timed(timings, "ingest"):
        ingested = ingest(data, data_docs)
    with _timed(timings, "features"):
        prepared = prepare(ingested.snapshot_id, config.protocol, config.seed, config.carves)
    run = prepared.run
    with _timed(timings, "embed"):
        embeddings = embed(run, encoder)

    config = size_guard(run, config)
    fused = config.fused_sources
    baselines = [name for name in config.sources if name in BASELINES]
    with _timed(timings, "tune_sources"):
        config = config.model_copy(update={"sources": tune_sources(
            run, config.sources, config.source_trials, config.seed, config.k)})

    def train_all(names: list[str], parts: list[Part], beside: Callable[[], None] | None = None
                  ) -> list[dict[str, str]]:
        """``names`` trained on each of ``parts``, side by side (``train_side_by_side``)."""
        progress = {part: create_progress_artifact(0.0, description=f"sources trained on {part}")
                    for part in parts}
        done = dict.fromkeys(parts, 0)
        lock = threading.Lock()

        def train(part: Part, name: str) -> str:
            with _timed(timings, f"train_{name}"):
                path = train_source(run, name, config.sources[name], part, config.seed,
                                    embeddings)
            artifact = progress[part]
            assert isinstance(artifact, UUID)  # called from sync code: the sync one ran
            with lock:  # updated under the lock: a slower update cannot land after a newer one
                done[part] += 1
                count = done[part]
                update_progress_artifact(artifact, 100.0 * count / len(names),
                                         description=f"sources trained on {part}: "
                                                     f"{count}/{len(names)}")
            logger.info("%s on %s: %d/%d sources", name, part, count, len(names))
            return path

        return train_side_by_side(train, names, parts, settings.train_workers, beside)

    # one pool for the three training stages: each worker imports torch and the sources once
    with workers.pool(settings.train_workers) if settings.train_workers > 1 else nullcontext():
        fits = [fit for fit, _ in RunStore(run).carves()[:config.carves]]
        with _timed(timings, "train_carves"):
            carve_sources = train_all(fused, fits)
        logger.info("sources trained on every validation carve (%s) in %.2fs", ", ".join(fits),
                    timings["train_carves"])
        tuned: list[TunedFusion] = []

        def fuse() -> None:
            """The fusion's tuning, beside the refit: it needs only the carves' sources."""
            with _timed(timings, "tune_fusion"):
                tuned.append(tune_fusion(run, carve_sources, config.k, config.trials,
                                         config.seed))

        trained = train_all((fused if config.refit else []) + baselines, ["train"], fuse)[0]
    sources = {name: trained[name] for name in fused} if config.refit else carve_sources[0]
    with _timed(timings, "evaluate"):
        evaluated = evaluate(run, sources, {name: trained[name] for name in baselines},
                             tuned[0].config, ks, ingested.dataset,
                             encoder, embeddings)
    registered = version = None
    if register_model:
        tags = {"snapshot_id": ingested.snapshot_id, "dataset": ingested.dataset,
                "protocol": config.protocol, "encoder": encoder, "git_commit": _git_commit(),
                "validation": "passed" if ingested.validation["success"] else "failed"}
        params = {"training": config.model_dump(), "fusion": tuned[0].config.model_dump(),
                  "encoder": encoder, "data": data, "cutoffs": ks}
        with _timed(timings, "register"):
            version = register(run, evaluated, params, tags)
            registered = promote(run, version, evaluated.score("fused"), config.k)
    report = run_report(evaluated, timings, ingested.validation, prepared.data, registered,
                        data_docs=ingested.data_docs,
                        mlflow_run=None if version is None else version.run_link,
                        tracking_uri=settings.tracking_uri)
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(report.to_json(), indent=2))
    publish(report)
    logger.info("stage seconds %s", timings)
    return report
