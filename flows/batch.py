"""The batch-recommend flow: every user's top-k to Parquet, then to the warehouse.

Users are scored in shards (``RECSYS_SHARD_USERS`` each) on the configured task runner
(``RECSYS_TASK_RUNNER``: local threads or a Dask cluster); the parts are combined in user
order, so the output is the same on either runner.
"""

from __future__ import annotations

from prefect import flow, unmapped

from flows.exclusive import exclusive
from flows.runner import sharded
from recsys_core.config import get_settings
from recsys_core.lifecycle.batch import BatchResult
from tasks.batch import (
    BatchRun,
    combine_shards,
    load_recommendations,
    plan_batch,
    recommend_shard,
)


@flow(name="recommend-shards")
def recommend_shards(alias: str = "champion", k: int = 10) -> BatchResult:
    """Score every user shard of the aliased version and combine the parts.

    Shard tasks get the flow's settings as a parameter: a Dask worker's environment is not
    the flow's.
    """
    plan = plan_batch(alias, k)
    parts = recommend_shard.map(unmapped(get_settings()), plan.version, plan.shards, k)
    return combine_shards(parts.result(), plan.parquet)


@flow(name="batch-recommend")
@exclusive
def batch_flow(alias: str = "champion", k: int = 10) -> BatchRun:
    """Write the top-``k`` of every user from the aliased version to Parquet and DuckDB."""
    return load_recommendations(sharded(recommend_shards)(alias, k))
