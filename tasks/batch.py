"""Batch tasks: every user's top-k from a registered version, shard by shard, then DuckDB."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from recsys_core.config import Settings, get_settings
from recsys_core.lifecycle import batch
from recsys_core.lifecycle.batch import BatchResult
from tasks.common import Result, retry_on_io


class BatchPlan(Result):
    """What a batch run covers.

    Args:
        version: the model version the alias names.
        shards: ``(start, stop)`` user ranges covering every user.
        parquet: the version's output file.
    """

    version: str
    shards: list[tuple[int, int]]
    parquet: str


class BatchRun(BatchResult):
    """A batch run's recommendations, in Parquet and in the warehouse.

    Args:
        table: the warehouse table.
        warehouse: the DuckDB file.
        rows_loaded: the rows the version now has in the table.
    """

    table: str
    warehouse: str
    rows_loaded: int


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def plan_batch(alias: str, k: int) -> BatchPlan:
    """Resolve the alias; returns its version, the user shards and the output file."""
    settings = get_settings()
    version = batch.resolve_version(settings, alias)
    shards = batch.user_shards(settings, version, settings.shard_users)
    get_run_logger().info("version %s: %d users in %d shards", version,
                          shards[-1][1] if shards else 0, len(shards))
    return BatchPlan(version=version, shards=shards,
                     parquet=str(batch.output_path(settings, version, k)))


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=retry_on_io)
def recommend_shard(settings: Settings, version: str, shard: tuple[int, int], k: int) -> str:
    """Top-k of one user range to a Parquet part (the flow's settings); returns its path."""
    return str(batch.recommend_shard(settings, version, shard[0], shard[1], k))


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def combine_shards(parts: list[str], parquet: str) -> BatchResult:
    """Concatenate the parts into the version's Parquet file."""
    result = batch.combine_parts(parts, parquet)
    get_run_logger().info("version %s: %d rows for %d users -> %s", result.model_version,
                          result.rows, result.users, result.parquet)
    return result


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def load_recommendations(written: BatchResult) -> BatchRun:
    """Replace that version's rows in the warehouse table ``recommendations``."""
    warehouse = get_settings().warehouse_path
    rows = batch.load_table(written.parquet, warehouse)
    get_run_logger().info("%d rows in %s:%s", rows, warehouse, batch.TABLE)
    return BatchRun(**dict(written), table=batch.TABLE, warehouse=str(warehouse),
                    rows_loaded=rows)
