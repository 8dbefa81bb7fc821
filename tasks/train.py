"""Training tasks: features + split, one source, fusion tuning (embedding: tasks.embed)."""

from __future__ import annotations

import time
from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.embed.device import resolve_device
from recsys_core.runstore import Part, RunStore
from recsys_core.scoring import TrainOptions
from recsys_core.training import TrainingConfig
from tasks.common import CACHED, IO_RETRIES


@task(cache_policy=CACHED, **IO_RETRIES)
def prepare(snapshot_id: str, protocol: str, seed: int) -> dict:
    """Build features of the snapshot (warehouse read) and split them; returns the run folder."""
    store = pipeline.prepare_run(get_settings(), snapshot_id, protocol, seed)
    users, items = store.vocabularies()
    rows = store.meta["rows"]
    get_run_logger().info("run %s: %d users, %d items; rows per part %s", store.folder.name,
                          len(users), len(items), rows)
    return {"run": str(store.folder), "users": len(users), "items": len(items), "rows": rows}


@task(cache_policy=CACHED)
def size_guard(run: str, config: dict[str, Any]) -> dict[str, Any]:
    """The training config the run's size allows (``pipeline.size_plan``), as a dict."""
    requested = TrainingConfig.model_validate(config)
    planned = pipeline.size_plan(RunStore(run), requested, get_settings().large_run)
    get_run_logger().info("sources %s (dropped: %s); source trials %d, refit %s",
                          sorted(planned.sources),
                          sorted(set(requested.sources) - set(planned.sources)),
                          planned.source_trials, planned.refit)
    return planned.model_dump()


@task(cache_policy=CACHED)
def train_source(run: str, name: str, params: dict[str, Any], part: Part, seed: int,
                 embeddings: str | None = None) -> str:
    """Train one source on a part of the run; returns its pickle's path."""
    options = TrainOptions(seed=seed, device=resolve_device(get_settings().device).type)
    start = time.perf_counter()
    path = pipeline.train_source(RunStore(run), name, params, part, options, embeddings)
    get_run_logger().info("trained %s on %s in %.2fs -> %s (%.1f MB)", name, part,
                          time.perf_counter() - start, path.name, path.stat().st_size / 1e6)
    return str(path)


@task(cache_policy=CACHED)
def tune_fusion(run: str, sources: dict[str, str], k: int, trials: int, seed: int) -> dict:
    """Tune the fusion on the validation part; returns the config and validation scores."""
    result = pipeline.tune_fusion(RunStore(run), sources, k, trials, seed)
    get_run_logger().info("fusion over %d trials %s: validation ndcg@%d %.4f, sources alone %s",
                          result.trials, result.config.weights, k, result.ndcg, result.single)
    return {"config": result.config.model_dump(), "validation_ndcg": result.ndcg,
            "single": result.single, "trials": result.trials}
