"""The batch-recommend flow: every user's top-k to Parquet, then to the warehouse."""

from __future__ import annotations

from prefect import flow

from tasks.batch import load_recommendations, recommend_all


@flow(name="batch-recommend")
def batch_flow(alias: str = "champion", k: int = 10) -> dict:
    """Write the top-``k`` of every user from the aliased version to Parquet and DuckDB."""
    written = recommend_all(alias, k)
    loaded = load_recommendations(written["parquet"])
    return {**written, **loaded}
