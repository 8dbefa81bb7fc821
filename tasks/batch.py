"""Batch tasks: every user's top-k from a registered version, shard by shard, then DuckDB."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from recsys_core.config import Settings, get_settings
from recsys_core.lifecycle import batch
from tasks.common import retry_on_io


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def plan_batch(alias: str, k: int) -> dict:
    """Resolve the alias; returns its version, the user shards and the output file."""
    settings = get_settings()
    version = batch.resolve_version(settings, alias)
    shards = batch.user_shards(settings, version, settings.shard_users)
    get_run_logger().info("version %s: %d users in %d shards", version,
                          shards[-1][1] if shards else 0, len(shards))
    return {"version": version, "shards": shards,
            "parquet": str(batch.output_path(settings, version, k))}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=retry_on_io)
def recommend_shard(settings: Settings, version: str, shard: tuple[int, int], k: int) -> str:
    """Top-k of one user range to a Parquet part (the flow's settings); returns its path."""
    return str(batch.recommend_shard(settings, version, shard[0], shard[1], k))


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def combine_shards(parts: list[str], parquet: str) -> dict:
    """Concatenate the parts into the version's Parquet file."""
    result = batch.combine_parts(parts, parquet)
    get_run_logger().info("version %s: %d rows for %d users -> %s", result.model_version,
                          result.rows, result.users, result.parquet)
    return {"parquet": str(result.parquet), "model_name": result.model_name,
            "model_version": result.model_version, "rows": result.rows, "users": result.users}


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def load_recommendations(parquet: str) -> dict:
    """Replace that version's rows in the warehouse table ``recommendations``."""
    warehouse = get_settings().warehouse_path
    rows = batch.load_table(parquet, warehouse)
    get_run_logger().info("%d rows in %s:%s", rows, warehouse, batch.TABLE)
    return {"table": batch.TABLE, "warehouse": str(warehouse), "rows_loaded": rows}
