"""The batch-recommend flow: every user's top-k to Parquet and the warehouse."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.batch import batch_flow
from recsys_core.config import get_settings
from recsys_core.lifecycle import promotion, registry
from recsys_core.lifecycle.batch import TABLE
from recsys_core.warehouse.store import Warehouse
from tests.lifecycle.builders import STRONG, build_run, unique_settings


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    run = build_run(tmp_path_factory.mktemp("batch-flow"))
    settings = unique_settings()
    run.register(run.train(STRONG), settings)
    promotion.challenge(settings)
    return settings


def test_batch_flow_writes_every_users_top_k(prefect_harness, registered, monkeypatch) -> None:
    settings = registered
    monkeypatch.setenv("RECSYS_MODEL_NAME", settings.model_name)
    result = batch_flow(k=3)
    model = registry.load_recommender(settings, registry.CHAMPION)
    assert result.model_version == "1" and result.table == TABLE
    frame = pl.read_parquet(result.parquet)
    assert Path(result.parquet).parent == get_settings().home / "recommendations"
    assert result.users == frame["user_id"].n_unique() == len(model.users)
    assert result.rows == frame.height == result.rows_loaded
    first = frame.filter(pl.col("user_id") == "u1").sort("rank")
    assert first["item_id"].to_list() == [r.item_id for r in model.recommend("u1", 3)]

    batch_flow(k=3)  # a rerun replaces the version's rows
    stored = Warehouse(get_settings().warehouse_path).query(
        f"SELECT COUNT(*) AS n FROM {TABLE} WHERE model_name = ? AND model_version = '1'",
        [settings.model_name])
    assert stored["n"][0] == frame.height


def test_batch_flow_without_champion_fails_clearly(prefect_harness, monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_MODEL_NAME", unique_settings().model_name)
    with pytest.raises(LookupError, match="no 'champion' version"):
        batch_flow(k=3)
