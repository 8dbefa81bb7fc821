"""Training tasks: features + split, one source, fusion tuning (embedding: tasks.embed)."""

from __future__ import annotations

import time
from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from recsys_core import pipeline, workers
from recsys_core.config import get_settings
from recsys_core.embed.device import resolve_device
from recsys_core.evaluation.report import DataSection
from recsys_core.fusion.weighted import FusionConfig
from recsys_core.runstore import Part, RunStore
from recsys_core.scoring import TrainOptions
from recsys_core.training import TrainingConfig
from tasks.common import CACHED, IO_RETRIES, Result


class PreparedRun(Result):
    """A run folder with its parts written.

    Args:
        run: the ``RunStore`` folder.
        data: the snapshot's counts (users, items, rows per part).
    """

    run: str
    data: DataSection


class TunedFusion(Result):
    """The tuned fusion and what it scored on validation.

    Args:
        config: the fusion config.
        validation_ndcg: its validation NDCG@k.
        single: each source alone, validation NDCG@k.
        trials: trials run.
        per_carve: its validation NDCG@k on each carve.
    """

    config: FusionConfig
    validation_ndcg: float
    single: dict[str, float]
    trials: int
    per_carve: list[float] = []


@task(cache_policy=CACHED, **IO_RETRIES)
def prepare(snapshot_id: str, protocol: str, seed: int, carves: int = 1) -> PreparedRun:
    """Build features of the snapshot (warehouse read) and split them; returns the run folder."""
    store = pipeline.prepare_run(get_settings(), snapshot_id, protocol, seed, carves)
    users, items = store.vocabularies()
    rows = store.meta["rows"]
    get_run_logger().info("run %s: %d users, %d items; rows per part %s", store.folder.name,
                          len(users), len(items), rows)
    return PreparedRun(run=str(store.folder), data=DataSection(
        snapshot_id=snapshot_id, users=len(users), items=len(items), rows=rows))


@task(cache_policy=CACHED)
def size_guard(run: str, requested: TrainingConfig) -> TrainingConfig:
    """The training config the run's size allows (``pipeline.size_plan``)."""
    planned = pipeline.size_plan(RunStore(run), requested, get_settings().large_run)
    get_run_logger().info("sources %s (dropped: %s); source trials %d, refit %s",
                          sorted(planned.sources),
                          sorted(set(requested.sources) - set(planned.sources)),
                          planned.source_trials, planned.refit)
    return planned


@task(cache_policy=CACHED)
def train_source(run: str, name: str, params: dict[str, Any], part: Part, seed: int,
                 embeddings: str | None = None) -> str:
    """Train one source on a part of the run; returns its pickle's path.

    The training runs in a worker process while the flow has a ``workers.pool`` open.
    """
    options = TrainOptions(seed=seed, device=resolve_device(get_settings().device).type)
    start = time.perf_counter()
    path = workers.call(pipeline.train_source, RunStore(run), name, params, part, options,
                        embeddings)
    get_run_logger().info("trained %s on %s in %.2fs -> %s (%.1f MB)", name, part,
                          time.perf_counter() - start, path.name, path.stat().st_size / 1e6)
    return str(path)


@task(cache_policy=CACHED)
def tune_fusion(run: str, carves: list[dict[str, str]], k: int, trials: int, seed: int
                ) -> TunedFusion:
    """Tune the fusion on the validation carves; returns the config and validation scores."""
    result = pipeline.tune_fusion(RunStore(run), carves, k, trials, seed)
    get_run_logger().info("fusion over %d trials %s: validation ndcg@%d %.4f (per carve %s), "
                          "sources alone %s", result.trials, result.config.weights, k,
                          result.ndcg, result.per_carve, result.single)
    return TunedFusion(config=result.config, validation_ndcg=result.ndcg, single=result.single,
                       trials=result.trials, per_carve=list(result.per_carve))
