"""Hyperparameter tuning task: each searchable source alone on the validation part."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.embed.device import resolve_device
from recsys_core.runstore import RunStore
from recsys_core.scoring import TrainOptions
from tasks.common import CACHED


@task(cache_policy=CACHED)
def tune_sources(run: str, sources: dict[str, dict[str, Any]], trials: int, seed: int, k: int
                 ) -> dict[str, dict[str, Any]]:
    """Tune key source hyperparameters on fit -> valid; returns every source's params."""
    options = TrainOptions(seed=seed, device=resolve_device(get_settings().device).type)
    tuned = pipeline.tune_sources(RunStore(run), sources, options, trials, k)
    get_run_logger().info("tuned source params (%d trials each): %s", trials,
                          {n: p for n, p in tuned.items() if p != sources[n]})
    return tuned
