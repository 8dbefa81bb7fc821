"""Registry tasks: log + register a version (with its precomputed lists), promotion, rollback."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from recsys_core.config import get_settings
from recsys_core.evaluation.report import GatedVersion, PromotionOutcome, RegisteredRun, RunReport
from recsys_core.lifecycle import batch, promotion, registry
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.runstore import RunStore
from tasks.common import IO_RETRIES, Result


class Registration(RegisteredRun):
    """A new version of the registered model.

    Args:
        run_link: the MLflow UI address of its run, or its ``runs:/`` URI.
    """

    run_link: str


class Challenge(PromotionOutcome):
    """The promotion check of the challenger.

    Args:
        version: the challenger version.
    """

    version: str


class Rollback(Result):
    """A rollback of the champion alias.

    Args:
        rolled_back_from: the champion before.
        champion: the champion now.
    """

    rolled_back_from: str
    champion: str


@task(**IO_RETRIES)
def register(run: str, report: RunReport, params: dict, tags: dict[str, str]) -> Registration:
    """Register the run's model as a new version (``challenger``) with every user's top-K."""
    settings = get_settings()
    store = RunStore(run)
    model = HybridRecommender.load(store.model_dir)
    version, lists, rows = batch.register_with_top_k(
        model, store.model_dir, report.to_json(), params, tags, settings,
        eval_run=store.folder if store.has_part("test") else None)
    link = registry.run_link(settings.tracking_uri, version.run_id)
    get_run_logger().info("registered %s version %s with top-%d lists (%d rows in %s), run %s",
                          version.name, version.version, lists.k, rows, batch.TABLE, link)
    return Registration(name=version.name, version=version.version, run_id=version.run_id,
                        run_link=link)


@task(**IO_RETRIES)
def promote(run: str, registration: Registration, challenger_ndcg: float, k: int,
            margin: float = 0.0) -> GatedVersion:
    """Score the champion on this run's test data; promote the challenger if it is better."""
    decision = promotion.gate(get_settings(), str(registration.version), challenger_ndcg,
                              promotion.run_data(run, k), margin)
    get_run_logger().info(decision.reason)
    return GatedVersion(**registration.model_dump(include={"name", "version", "run_id"}),
                        **_outcome(decision).model_dump())


@task(**IO_RETRIES)
def challenge(margin: float = 0.0, k: int | None = None) -> Challenge:
    """Score challenger and champion on the challenger's evaluation data; promote if better."""
    decision = promotion.challenge(get_settings(), margin, k)
    get_run_logger().info(decision.reason)
    return Challenge(version=decision.version, **_outcome(decision).model_dump())


@task  # no retries: a retried rollback after a lost reply would roll back twice
def rollback() -> Rollback:
    """Point ``champion`` back at the previous champion."""
    done = registry.rollback(get_settings())
    get_run_logger().info("champion rolled back from version %s to %s", done.from_version,
                          done.to_version)
    return Rollback(rolled_back_from=done.from_version, champion=done.to_version)


def _outcome(decision: promotion.Decision) -> PromotionOutcome:
    return PromotionOutcome(promoted=decision.promoted, challenger_ndcg=decision.challenger_score,
                            champion_ndcg=decision.champion_score,
                            champion_version=decision.champion_version, reason=decision.reason)
