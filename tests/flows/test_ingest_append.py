"""`recsys ingest --append`: the later row wins in a new snapshot, its new events are exported."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.app.cli import app
from flows.ingest import ingest_flow
from recsys_core.config import get_settings
from recsys_core.model.events import EventFeed, events_file
from recsys_core.warehouse.store import Warehouse

BASE = ("user_id,item_id,timestamp,rating\nu1,i1,1700000000,4\nu1,i2,1700000100,3\n"
        "u2,i1,1700000200,5\n")
ITEMS = "item_id,title\ni1,One\ni2,Two\ni3,Three\n"


def write(folder: Path, interactions: str, items: str = "item_id,title\n") -> str:
    folder.mkdir()
    (folder / "interactions.csv").write_text(interactions)
    (folder / "items.csv").write_text(items)
    return str(folder)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_append_writes_a_child_snapshot_and_exports_its_new_events(prefect_harness, home,
                                                                   tmp_path) -> None:
    base = ingest_flow(data=write(tmp_path / "base", BASE, ITEMS), data_docs=False)
    settings = get_settings()
    assert not settings.events_dir.exists()  # a load exports nothing
    increment = write(tmp_path / "increment",
                      "user_id,item_id,timestamp,rating\n"
                      "u1,i3,1700000300,5\n"  # a new event, with an item of the base
                      "u2,i1,1700000200,2\n"  # re-rates a base row
                      "u1,i1,1700000000,4\n")  # already held
    child = ingest_flow(data=increment, data_docs=False, append=True)
    warehouse = Warehouse(settings.warehouse_path)
    assert child.snapshot_id != base.snapshot_id
    assert warehouse.snapshots().filter(
        pl.col("snapshot_id") == child.snapshot_id)["parent_id"].item() == base.snapshot_id
    exported = pl.read_parquet(events_file(settings.events_dir, base.snapshot_id,
                                           child.snapshot_id))
    assert sorted(exported.select("user_id", "item_id").rows()) == [("u1", "i3"), ("u2", "i1")]
    feed = EventFeed(settings.events_dir, base.snapshot_id)
    assert feed.recent("u1") == ["i3"] and feed.recent("u2") == ["i1"]


def test_cli_append_flag_reaches_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.ingest

    calls: list[dict] = []

    def fake_flow(**kwargs):
        calls.append(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(flows.ingest, "ingest_flow", fake_flow)
    result = CliRunner().invoke(app, ["ingest", "--data", "synthetic:100", "--append"])
    assert result.exit_code == 2 and "stop here" in result.output
    CliRunner().invoke(app, ["ingest", "--data", "synthetic:100"])
    assert calls == [{"data": "synthetic:100", "append": True},
                     {"data": "synthetic:100", "append": False}]
