"""Registry tasks: log + register a version, the gated promotion, rollback."""

from __future__ import annotations

from mlflow import MlflowClient
from prefect import task
from prefect.logging import get_run_logger

from recsys_core.config import get_settings
from recsys_core.lifecycle import promotion, registry
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.runstore import RunStore
from tasks.common import IO_RETRIES


@task(**IO_RETRIES)
def register(run: str, report: dict, params: dict, tags: dict[str, str]) -> dict:
    """Log the run's evaluated model to MLflow; register a new version (alias ``challenger``)."""
    settings = get_settings()
    store = RunStore(run)
    version = registry.register(HybridRecommender.load(store.model_dir), store.model_dir,
                                report, params, tags, settings,
                                eval_run=store.folder if store.has_part("test") else None)
    link = run_link(settings.tracking_uri, version.run_id)
    get_run_logger().info("registered %s version %s, run %s", version.name, version.version,
                          link)
    return {"name": version.name, "version": version.version, "run_id": version.run_id,
            "run_link": link}


def run_link(tracking_uri: str, run_id: str) -> str:
    """The MLflow UI address of a run on a tracking server, else its ``runs:/`` URI."""
    if not tracking_uri.startswith(("http://", "https://")):
        return f"runs:/{run_id}"
    experiment = MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


@task(**IO_RETRIES)
def promote(run: str, version: str, challenger_ndcg: float, k: int, margin: float = 0.0
            ) -> dict:
    """Score the champion on this run's test data; promote the challenger if it is better."""
    decision = promotion.gate(get_settings(), version, challenger_ndcg,
                              promotion.run_data(run, k), margin)
    get_run_logger().info(decision.reason)
    return _decision(decision)


@task(**IO_RETRIES)
def challenge(margin: float = 0.0, k: int | None = None) -> dict:
    """Score challenger and champion on the challenger's evaluation data; promote if better."""
    decision = promotion.challenge(get_settings(), margin, k)
    get_run_logger().info(decision.reason)
    return {"version": decision.version, **_decision(decision)}


@task  # no retries: a retried rollback after a lost reply would roll back twice
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
