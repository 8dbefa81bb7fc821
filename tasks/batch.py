"""Batch tasks: every user's top-k from a registered version, then into the warehouse."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from recsys_core.config import get_settings
from recsys_core.model import batch
from tasks.common import retry_on_io


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def recommend_all(alias: str = "champion", k: int = 10) -> dict:
    """Top-k for every user of the aliased version; returns the Parquet file's path."""
    result = batch.recommend_all(get_settings(), alias, k)
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
