"""Training tasks: features + split, embeddings, one source, fusion tuning."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.embed.device import resolve_device
from recsys_core.runstore import Part, RunStore
from recsys_core.scoring import TrainOptions
from tasks.common import CACHED


@task(cache_policy=CACHED)
def prepare(snapshot_id: str, protocol: str, seed: int) -> str:
    """Build features of the snapshot and split them; returns the run folder."""
    store = pipeline.prepare_run(get_settings(), snapshot_id, protocol, seed)
    get_run_logger().info("run %s: rows %s", store.folder.name, store.meta["rows"])
    return str(store.folder)


@task(cache_policy=CACHED)
def embed(run: str, encoder: str) -> str:
    """Embed the run's item documents (cached per document); returns the embeddings' path."""
    logger = get_run_logger()
    result, path = pipeline.embed_items(RunStore(run), get_settings(), encoder,
                                        progress=lambda done, total: logger.info(
                                            "embedded %d/%d documents", done, total))
    logger.info("%d documents: %d from cache, %d embedded in %.1fs (%s)", result.n_unique,
                result.n_cached, result.n_embedded, result.seconds, result.numeric_path)
    return str(path)


@task(cache_policy=CACHED)
def train_source(run: str, name: str, params: dict[str, Any], part: Part, seed: int,
                 embeddings: str | None = None) -> str:
    """Train one source on a part of the run; returns its pickle's path."""
    options = TrainOptions(seed=seed, device=resolve_device(get_settings().device).type)
    path = pipeline.train_source(RunStore(run), name, params, part, options, embeddings)
    get_run_logger().info("trained %s on %s -> %s", name, part, path.name)
    return str(path)


@task(cache_policy=CACHED)
def tune_fusion(run: str, sources: dict[str, str], k: int, trials: int, seed: int) -> dict:
    """Tune the fusion on the validation part; returns the config and validation scores."""
    result = pipeline.tune_fusion(RunStore(run), sources, k, trials, seed)
    get_run_logger().info("fusion %s: validation ndcg@%d %.4f, sources alone %s",
                          result.config.weights, k, result.ndcg, result.single)
    return {"config": result.config.model_dump(), "validation_ndcg": result.ndcg,
            "single": result.single, "trials": result.trials}
