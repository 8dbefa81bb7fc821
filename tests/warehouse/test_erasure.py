"""Erasing users from the warehouse: every table, re-keyed snapshots, later loads, the file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.warehouse import Warehouse, snapshot_id
from recsys_core.warehouse.erased import user_hash
from tests.warehouse.test_warehouse import T0, counts, make_dataset, make_quarantine

GONE = "erase-me-0c5d7a11"
"""A user id long enough that a byte search of a file cannot find it by chance."""


def with_user(name: str = "tiny") -> Dataset:
    base = make_dataset(name)
    theirs = S.conform(pl.DataFrame({
        S.USER_ID: [GONE, GONE], S.ITEM_ID: ["i1", "i4"],
        S.TS: [T0 + timedelta(days=d) for d in (1, 2)]}), S.INTERACTIONS_SCHEMA)
    users = pl.DataFrame({S.USER_ID: ["u1", "u2", "u3", GONE],
                          "country": ["fr", "de", "it", "se"]})
    return Dataset(name, pl.concat([base.interactions, theirs]), base.items, users)


def their_quarantine() -> dict[str, pl.DataFrame]:
    bad = make_quarantine()["interactions"]
    return {"interactions": pl.concat([bad, bad.with_columns(pl.lit(GONE).alias(S.USER_ID))])}


def rows_of(wh: Warehouse, user: str) -> dict[str, int]:
    return {table: wh.query(f"SELECT count(*) AS n FROM {table} WHERE user_id = ?",
                            [user]).item()
            for table in ("raw_interactions", "clean_interactions",
                          "quarantine_interactions", "clean_users")}


def test_forget_removes_every_row_and_rekeys_the_snapshot(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    first = wh.load(with_user(), their_quarantine())
    child = wh.append(Dataset("more", S.conform(pl.DataFrame({
        S.USER_ID: [GONE, "u1"], S.ITEM_ID: ["i2", "i3"],
        S.TS: [T0 + timedelta(days=5)] * 2}), S.INTERACTIONS_SCHEMA), make_dataset().items))
    assert rows_of(wh, GONE) == {"raw_interactions": 4, "clean_interactions": 5,
                                 "quarantine_interactions": 1, "clean_users": 2}

    removed, renamed = wh.forget([GONE, "nobody"])

    assert removed == {"raw_interactions": 4, "clean_interactions": 5,
                       "quarantine_interactions": 1, "clean_users": 2, "snapshots": 2}
    assert rows_of(wh, GONE) == dict.fromkeys(removed.keys() - {"snapshots"}, 0)
    assert set(renamed) == {first, child}
    snapshots = wh.snapshots()
    assert set(snapshots["snapshot_id"]) == set(renamed.values())
    for new in renamed.values():  # every snapshot id is the hash of what it holds now
        assert snapshot_id(wh.dataset(new)) == new
    parent = snapshots.filter(pl.col("snapshot_id") == renamed[child])["parent_id"].item()
    assert parent == renamed[first]
    assert set(wh.batches()["snapshot_id"]) == set(renamed.values())
    assert snapshots.filter(pl.col("snapshot_id") == renamed[first])["n_interactions"].item() \
        == make_dataset().interactions.height
    # an id it never held is remembered too: its rows will not be loaded later either
    assert sorted(wh.query("SELECT user_hash FROM erased_users").to_series()) == sorted(
        [user_hash(GONE), user_hash("nobody")])


def test_later_loads_drop_the_erased_users(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.load(with_user(), their_quarantine())
    _, renamed = wh.forget([GONE])
    before = counts(wh.path)
    again = wh.load(with_user("again"), their_quarantine())  # the same source, reloaded
    assert again == next(iter(renamed.values()))  # the erased snapshot, not a new copy
    assert rows_of(wh, GONE) == dict.fromkeys(rows_of(wh, GONE), 0)
    after = counts(wh.path)
    assert after["clean_interactions"] == before["clean_interactions"]
    assert after["load_batches"] == before["load_batches"] + 1
    appended = wh.append(Dataset("inc", S.conform(pl.DataFrame({
        S.USER_ID: [GONE], S.ITEM_ID: ["i3"], S.TS: [T0]}), S.INTERACTIONS_SCHEMA),
        make_dataset().items))
    assert GONE not in wh.interactions(appended)[S.USER_ID].to_list()
    assert wh.erased([GONE, "u1"]) == {GONE}


def test_forget_twice_removes_nothing_more(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.load(with_user(), their_quarantine())
    wh.forget([GONE])
    removed, renamed = wh.forget([GONE])
    assert set(removed.values()) == {0} and renamed == {}


def test_rewrite_leaves_no_byte_of_the_user_in_the_file(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.load(with_user(), their_quarantine())
    assert GONE.encode() in wh.path.read_bytes()
    wh.forget([GONE])
    tables = counts(wh.path)
    assert GONE.encode() in wh.path.read_bytes()  # deleted rows' bytes stay in free blocks
    wh.rewrite()
    assert GONE.encode() not in wh.path.read_bytes()
    assert counts(wh.path) == tables
    assert not list(tmp_path.glob(".*"))  # no stray rewrite file


KILL_CHILD = """
import sys
from recsys_core.warehouse import Warehouse
wh = Warehouse(sys.argv[1])
print("rewriting", flush=True)
while True:
    wh.rewrite()
"""


def test_a_rewrite_killed_midway_leaves_the_file_whole_and_a_rerun_completes(
        tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    big = with_user()
    inter = pl.concat([big.interactions.with_columns(
        (pl.col(S.TS) + timedelta(seconds=s)).alias(S.TS)) for s in range(3000)])
    wh.load(Dataset("big", inter, big.items, big.users))
    before = counts(wh.path)
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(wh.path)],
                             cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "rewriting"
    stray, deadline = tmp_path / ".wh.duckdb.rewrite", time.monotonic() + 60
    while not stray.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    started = stray.exists()
    child.send_signal(signal.SIGKILL)  # while the fresh copy is being written
    assert started, "the rewrite never started"
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert counts(wh.path) == before  # the old file, untouched
    wh.rewrite()  # the rerun replaces the stray copy and completes
    assert counts(wh.path) == before and not list(tmp_path.glob(".*"))
