"""Registry tasks: log + register a version, the gated promotion, rollback."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from recsys_core import registry
from recsys_core.config import get_settings
from recsys_core.model import promotion
from recsys_core.model.hybrid import HybridRecommender
from tasks.common import retry_on_io


@task(retries=2, retry_delay_seconds=[5, 20], retry_condition_fn=retry_on_io)
def register(model_dir: str, report: dict, params: dict, tags: dict[str, str]) -> dict:
    """Log the run to MLflow and register a new version (alias ``challenger``)."""
    run = Path(model_dir).parent  # pipeline.evaluate_run saves into RUN/model
    version = registry.register(HybridRecommender.load(model_dir), Path(model_dir), report,
                                params, tags, get_settings(),
                                eval_run=run if (run / "test.parquet").exists() else None)
    get_run_logger().info("registered %s version %s", version.name, version.version)
    return {"name": version.name, "version": version.version, "run_id": version.run_id}


@task
def promote(run: str, version: str, challenger_ndcg: float, k: int, margin: float = 0.0
            ) -> dict:
    """Score the champion on this run's test data; promote the challenger if it is better."""
    decision = promotion.gate(get_settings(), version, challenger_ndcg,
                              promotion.run_data(run, k), margin)
    get_run_logger().info(decision.reason)
    return _decision(decision)


@task
def challenge(margin: float = 0.0, k: int | None = None) -> dict:
    """Score challenger and champion on the challenger's evaluation data; promote if better."""
    decision = promotion.challenge(get_settings(), margin, k)
    get_run_logger().info(decision.reason)
    return {"version": decision.version, **_decision(decision)}


@task
def rollback() -> dict:
    """Point ``champion`` back at the previous champion."""
    done = registry.rollback(get_settings())
    get_run_logger().info("champion rolled back from version %s to %s", done.from_version,
                          done.to_version)
    return {"rolled_back_from": done.from_version, "champion": done.to_version}


def _decision(decision: promotion.Decision) -> dict:
    return {"promoted": decision.promoted, "challenger_ndcg": decision.challenger_score,
            "champion_ndcg": decision.champion_score,
            "champion_version": decision.champion_version, "reason": decision.reason}
