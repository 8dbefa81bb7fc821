"""Evaluation in user shards: rank test users shard by shard on the configured task runner.

Each shard task loads the sources, ranks its range of test users with every model and writes
the top-k lists to the run; the evaluation task then measures all of them at once, so the
metrics equal those of an evaluation that ranks in one process.
"""

from __future__ import annotations

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.fusion.weighted import FusionConfig
from recsys_core.runstore import RunStore
from tasks.evaluate import evaluate as evaluate_task
from tasks.runner import sharded


@task
def plan_ranking(run: str) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges of at most ``RECSYS_SHARD_USERS`` test users."""
    n_users, size = pipeline.evaluation_users(RunStore(run)), get_settings().shard_users
    shards = [(start, min(start + size, n_users)) for start in range(0, n_users, size)]
    get_run_logger().info("%d test users in %d shards", n_users, len(shards))
    return shards


@task(cache_policy=NO_CACHE)
def rank_shard(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: dict,
               k: int, shard: tuple[int, int], embeddings: str | None = None) -> str:
    """Rank one range of test users with every model; returns the lists' file."""
    return str(pipeline.rank_test_users(RunStore(run), sources, baselines,
                                        FusionConfig.model_validate(fusion), k, shard[0],
                                        shard[1], embeddings))


@flow(name="evaluate")
def evaluate_flow(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: dict,
                  k: int, dataset: str, encoder: str | None = None,
                  embeddings: str | None = None) -> dict:
    """Rank test users in shards, then evaluate; returns the report and the model's folder."""
    shards = plan_ranking(run)
    ranked = rank_shard.map(run, unmapped(sources), unmapped(baselines), unmapped(fusion), k,
                            shards, embeddings)
    return evaluate_task(run, sources, baselines, fusion, k, dataset, encoder, embeddings,
                         ranked.result())


def evaluate(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: dict, k: int,
             dataset: str, encoder: str | None = None, embeddings: str | None = None) -> dict:
    """Run ``evaluate_flow`` on the configured task runner (one thread when local)."""
    return sharded(evaluate_flow, local_threads=1)(run, sources, baselines, fusion, k, dataset,
                                                   encoder, embeddings)
