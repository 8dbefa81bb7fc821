from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.data.interactions import InteractionData
from recsys_core.warehouse import (
    FeatureConfig,
    Features,
    Warehouse,
    build_features,
    snapshot_id,
    writes,
)

T0 = datetime(2020, 1, 1, tzinfo=UTC)


def make_dataset(name: str = "tiny") -> Dataset:
    inter = pl.DataFrame({
        S.USER_ID: ["u2", "u1", "u1", "u3"],
        S.ITEM_ID: ["i1", "i1", "i2", "i3"],
        S.TS: [T0 + timedelta(hours=h) for h in range(4)],
        S.EVENT: [None, None, None, "play"],
        S.RATING: [2.0, 4.0, None, None],
        S.WEIGHT: [1.0, 1.0, 1.0, 9.0],
    })
    items = pl.DataFrame({
        S.ITEM_ID: ["i1", "i2", "i3", "i4"],
        S.TITLE: ["One", "Two", "Three", "Four"],
        S.TEXT: ["first", None, None, "cold"],
        S.CATEGORIES: [["a", "b"], [], None, ["c"]],
    })
    return Dataset(name, S.conform(inter, S.INTERACTIONS_SCHEMA),
                   S.conform(items, S.ITEMS_SCHEMA))


def make_quarantine() -> dict[str, pl.DataFrame]:
    bad = S.conform(pl.DataFrame({S.USER_ID: ["u9"], S.ITEM_ID: ["i9"]}),
                    S.INTERACTIONS_SCHEMA)
    bad = bad.with_columns(pl.lit(7, pl.Int64).alias("_row"),
                           pl.lit("expect_column_values_to_be_in_set(item_id)").alias("reason"))
    return {"interactions": bad}


def sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(S.USER_ID, S.ITEM_ID) if S.USER_ID in frame.columns else frame.sort(
        S.ITEM_ID)


def counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path))
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "ORDER BY table_name").fetchall()]
        return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        con.close()


def test_round_trip(tmp_path: Path) -> None:
    data = make_dataset()
    wh = Warehouse(tmp_path / "wh.duckdb")
    snap = wh.load(data, make_quarantine())
    assert snap == snapshot_id(data)
    assert sort(wh.interactions(snap)).equals(sort(data.interactions))
    assert sort(wh.items(snap)).equals(sort(data.items))
    assert wh.interactions(snap).schema == data.interactions.schema
    assert wh.users(snap) is None
    assert wh.latest_snapshot() == snap
    quarantined = wh.quarantined("interactions")
    assert quarantined["_row"].to_list() == [7]
    assert quarantined["reason"].to_list() == ["expect_column_values_to_be_in_set(item_id)"]
    batch = wh.batches().row(0, named=True)
    assert batch["n_clean_interactions"] == 4 and batch["n_quarantined_interactions"] == 1
    assert counts(wh.path)["raw_interactions"] == 5


def test_users_round_trip(tmp_path: Path) -> None:
    base = make_dataset()
    users = pl.DataFrame({S.USER_ID: ["u1", "u2"], "age": ["30", None], "city": ["x", "y"]})
    data = Dataset(base.name, base.interactions, base.items, users)
    wh = Warehouse(tmp_path / "wh.duckdb")
    snap = wh.load(data)
    back = wh.users(snap)
    assert back is not None and sort_users(back).equals(sort_users(users))
    assert snap != snapshot_id(base)


def sort_users(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(S.USER_ID)


def test_snapshot_id_is_content_hash(tmp_path: Path) -> None:
    data = make_dataset()
    shuffled = Dataset("other-name", data.interactions.reverse(), data.items.reverse())
    assert snapshot_id(data) == snapshot_id(shuffled)
    changed = Dataset("tiny", data.interactions.with_columns(
        pl.when(pl.col(S.RATING) == 4.0).then(4.5).otherwise(pl.col(S.RATING))
        .alias(S.RATING)), data.items)
    assert snapshot_id(changed) != snapshot_id(data)
    assert len(snapshot_id(data)) == 16


def test_reloading_same_content_adds_a_batch_not_rows(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    first = wh.load(make_dataset())
    second = Warehouse(tmp_path / "wh.duckdb").load(make_dataset("again"))
    assert first == second
    assert wh.batches().height == 2 and wh.snapshots().height == 1
    assert counts(wh.path)["clean_interactions"] == 4
    assert counts(wh.path)["raw_interactions"] == 8


def test_failed_load_leaves_warehouse_unchanged(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.load(make_dataset())
    before = counts(wh.path)
    original = writes.insert
    calls = []

    def failing(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame,
                constants: dict[str, str]) -> None:
        calls.append(table)
        if table == "quarantine_items":  # after clean + raw + quarantine interactions
            raise RuntimeError("injected failure")
        original(con, table, frame, constants)

    monkeypatch.setattr(writes, "insert", failing)
    new = make_dataset()
    new = Dataset("changed", new.interactions.with_columns(pl.lit(2.0).alias(S.WEIGHT)),
                  new.items)
    with pytest.raises(RuntimeError, match="injected"):
        wh.load(new, make_quarantine())
    assert "clean_interactions" in calls and "raw_interactions" in calls
    assert counts(wh.path) == before
    with pytest.raises(DataError, match="unknown snapshot"):
        wh.interactions(snapshot_id(new))


def test_unknown_snapshot_and_table(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    with pytest.raises(DataError, match="unknown snapshot"):
        wh.items("x' OR '1'='1")
    with pytest.raises(DataError, match="unknown table"):
        wh.quarantined("users; DROP TABLE snapshots")
    with pytest.raises(DataError, match="unknown quarantine tables"):
        wh.load(make_dataset(), {"nope": pl.DataFrame()})
    assert wh.latest_snapshot() is None


def test_build_features(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    snap = wh.load(make_dataset())
    features = build_features(wh, snap)
    assert features.snapshot_id == snap
    weights = {(r[S.USER_ID], r[S.ITEM_ID]): r[S.WEIGHT]
               for r in features.interactions.iter_rows(named=True)}
    assert weights == {("u2", "i1"): 0.5, ("u1", "i1"): 1.0, ("u1", "i2"): 1.0,
                       ("u3", "i3"): pytest.approx(1 + math.log(9))}
    assert features.interactions.columns == list(S.INTERACTIONS_SCHEMA)
    docs = dict(zip(features.items[S.ITEM_ID], features.items["document"], strict=True))
    assert docs == {"i1": "One. a, b. first", "i2": "Two", "i3": "Three", "i4": "Four. c. cold"}
    assert list(features.item_vocab.ids) == features.items[S.ITEM_ID].to_list()
    assert sorted(features.item_vocab.ids) == ["i1", "i2", "i3", "i4"]
    assert list(features.user_vocab.ids) == ["u1", "u2", "u3"]
    with pytest.raises(DataError):
        build_features(wh, "missing")


def test_features_stats_and_id_maps(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    features = build_features(wh, wh.load(make_dataset()))
    users = features.user_stats
    assert users.columns == [S.USER_ID, "user_index", "n_interactions", "n_items", "weight_sum",
                             "first_ts", "last_ts"]
    assert users[S.USER_ID].to_list() == list(features.user_vocab.ids)
    assert users["user_index"].to_list() == [0, 1, 2]
    assert users["n_interactions"].to_list() == [2, 1, 1]
    assert users["first_ts"][0] == T0 + timedelta(hours=1)
    items = features.item_stats
    assert items.columns == [S.ITEM_ID, "item_index", "n_interactions", "n_users", "weight_sum"]
    assert items[S.ITEM_ID].to_list() == list(features.item_vocab.ids)
    popularity = dict(zip(items[S.ITEM_ID], items["n_interactions"], strict=True))
    assert popularity == {"i1": 2, "i2": 1, "i3": 1, "i4": 0}
    weight = dict(zip(items[S.ITEM_ID], items["weight_sum"], strict=True))
    assert weight["i1"] == pytest.approx(1.5) and weight["i4"] == 0.0


def test_features_event_weights_and_time_decay(tmp_path: Path) -> None:
    base = make_dataset()
    inter = base.interactions.with_columns(
        pl.Series(S.EVENT, ["purchase", None, "view", "play"]),
        pl.Series(S.TS, [T0, T0 + timedelta(days=10), T0 + timedelta(days=20),
                         T0 + timedelta(days=20)]))
    wh = Warehouse(tmp_path / "wh.duckdb")
    snap = wh.load(Dataset("events", inter, base.items))
    plain = build_features(wh, snap, FeatureConfig(event_weights={}))
    weighted = build_features(wh, snap, FeatureConfig(event_weights={"purchase": 3.0,
                                                                     "view": 0.5}))
    decayed = build_features(wh, snap, FeatureConfig(event_weights={}, half_life_days=10))
    order = [("u2", "i1"), ("u1", "i1"), ("u1", "i2"), ("u3", "i3")]

    def weights(features: Features) -> list[float]:
        rows = features.interactions.iter_rows(named=True)
        found = {(r[S.USER_ID], r[S.ITEM_ID]): r[S.WEIGHT] for r in rows}
        return [found[key] for key in order]

    assert weights(plain) == pytest.approx([0.5, 1.0, 1.0, 1 + math.log(9)])
    assert weights(weighted) == pytest.approx([1.5, 1.0, 0.5, 1 + math.log(9)])
    assert weights(decayed) == pytest.approx([0.5 * 0.25, 0.5, 1.0, 1 + math.log(9)])
    assert weights(build_features(wh, snap)) == weights(plain)  # neutral by default
    assert FeatureConfig.model_validate(FeatureConfig(half_life_days=7).model_dump()) == \
        FeatureConfig(half_life_days=7)
    with pytest.raises(ValueError):
        FeatureConfig(half_life_days=0)


def test_a_source_without_time_keeps_null_ts_and_trains_unordered(tmp_path: Path) -> None:
    """Null ``ts`` (a source with no order, such as Last.fm HetRec) survives the warehouse and
    the features, time decay leaves its weights alone, and its training data has no times:
    the sequence models must not read an invented order."""
    base = make_dataset()
    timeless = base.interactions.with_columns(pl.lit(None, dtype=S.INTERACTIONS_SCHEMA[S.TS])
                                              .alias(S.TS))
    wh = Warehouse(tmp_path / "wh.duckdb")
    snap = wh.load(Dataset("timeless", timeless, base.items))
    assert wh.interactions(snap)[S.TS].null_count() == 4
    features = build_features(wh, snap, FeatureConfig(half_life_days=10))
    assert features.interactions.height == 4 and features.interactions[S.TS].null_count() == 4
    assert features.interactions[S.WEIGHT].to_list() == \
        build_features(wh, snap).interactions[S.WEIGHT].to_list()
    data = InteractionData.from_frame(features.interactions, features.user_vocab,
                                      features.item_vocab)
    assert data.times is None and data.matrix.nnz == 4


def increment() -> Dataset:
    inter = pl.DataFrame({
        S.USER_ID: ["u1", "u4", "u4", "u4", "u2"],
        S.ITEM_ID: ["i1", "i5", "i1", "i5", "i1"],
        S.TS: [T0 + timedelta(hours=1), T0 + timedelta(hours=5), T0 + timedelta(hours=6),
               T0 + timedelta(hours=5), T0],
        S.RATING: [4.0, None, 5.0, None, 5.0],
    })  # row 0 is already in the base, row 3 repeats row 1, row 4 re-rates a base row
    items = pl.DataFrame({S.ITEM_ID: ["i5", "i1"], S.TITLE: ["Five", "One renamed"]})
    return Dataset("increment", S.conform(inter, S.INTERACTIONS_SCHEMA),
                   S.conform(items, S.ITEMS_SCHEMA))


def test_append_applies_the_later_rows_in_a_child_snapshot(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    base = wh.load(make_dataset())
    child = wh.append(increment(), make_quarantine())
    assert child not in (base, None) and wh.latest_snapshot() == child
    inter = wh.interactions(child)
    assert inter.height == 4 + 2
    assert inter.select(S.USER_ID, S.ITEM_ID, S.TS).is_duplicated().sum() == 0
    rating = inter.filter((pl.col(S.USER_ID) == "u2") & (pl.col(S.ITEM_ID) == "i1"))[S.RATING]
    assert rating.to_list() == [5.0]  # the increment's row wins
    items = wh.items(child)
    assert sorted(items[S.ITEM_ID]) == ["i1", "i2", "i3", "i4", "i5"]
    assert items.filter(pl.col(S.ITEM_ID) == "i1")[S.TITLE].item() == "One renamed"
    assert wh.interactions(base).height == 4  # the parent is untouched
    assert wh.items(base).filter(pl.col(S.ITEM_ID) == "i1")[S.TITLE].item() == "One"
    snapshots = wh.snapshots()
    assert snapshots.filter(pl.col("snapshot_id") == child)["parent_id"].item() == base
    batch = wh.batches().row(-1, named=True)
    assert (batch["parent_id"], batch["n_duplicate_interactions"],
            batch["n_duplicate_items"]) == (base, 2, 0)
    assert (batch["n_replaced_interactions"], batch["n_replaced_items"]) == (1, 1)
    assert (batch["n_clean_interactions"], batch["n_quarantined_interactions"]) == (5, 1)
    replaced = wh.quarantined("interactions", batch["batch_id"]).sort("_row", nulls_last=True)
    assert replaced.select(S.USER_ID, S.ITEM_ID, S.RATING, "_row", "reason").rows() == [
        ("u9", "i9", None, 7, "expect_column_values_to_be_in_set(item_id)"),
        ("u2", "i1", 2.0, None, "superseded")]
    old_item = wh.quarantined("items", batch["batch_id"])
    assert old_item.select(S.ITEM_ID, S.TITLE, S.TEXT, "_row", "reason").rows() == [
        ("i1", "One", "first", None, "superseded")]
    assert counts(wh.path)["raw_interactions"] == 4 + 5 + 1  # base, increment, its bad row
    merged = Dataset("any", wh.interactions(child), wh.items(child))
    assert snapshot_id(merged) == child
    again = wh.append(increment())
    assert again == child and wh.snapshots().height == 2  # nothing new: same snapshot
    assert build_features(wh, child).item_stats.filter(
        pl.col(S.ITEM_ID) == "i5")["n_interactions"].item() == 1


def test_appended_gives_the_rows_an_append_added_to_its_parent(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    base = wh.load(make_dataset())
    assert wh.appended(base)[0] is None and wh.appended(base)[1].is_empty()
    child = wh.append(increment())
    parent, added = wh.appended(child)
    assert parent == base and added.columns == list(S.INTERACTIONS_SCHEMA)
    # the new events and the re-rated row; not the row the base already held, nor its repeat
    assert sorted(added.select(S.USER_ID, S.ITEM_ID, S.RATING).rows()) == [
        ("u2", "i1", 5.0), ("u4", "i1", 5.0), ("u4", "i5", None)]
    grandchild = wh.append(Dataset("more", increment().interactions.with_columns(
        pl.col(S.TS) + timedelta(days=1)).head(1), increment().items))
    assert wh.appended(grandchild)[0] == child and wh.appended(grandchild)[1].height == 1
    with pytest.raises(DataError, match="unknown snapshot"):
        wh.appended("nope")


def test_append_to_an_older_base_and_to_nothing(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    first = wh.append(make_dataset())  # an empty warehouse: a plain load
    assert first == snapshot_id(make_dataset())
    wh.append(increment())
    other = wh.append(Dataset("x", increment().interactions.head(2), increment().items),
                      base=first)
    assert wh.interactions(other).height == 5
    with pytest.raises(DataError, match="unknown snapshot"):
        wh.append(increment(), base="nope")


def test_failed_append_leaves_no_partial_batch(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.load(make_dataset())
    before = counts(wh.path)
    original = writes.insert

    def failing(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame,
                constants: dict[str, str]) -> None:
        if table == "raw_items":
            raise RuntimeError("injected failure")
        original(con, table, frame, constants)

    monkeypatch.setattr(writes, "insert", failing)
    with pytest.raises(RuntimeError, match="injected"):
        wh.append(increment())
    assert counts(wh.path) == before


def test_older_warehouse_file_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE snapshots (snapshot_id VARCHAR PRIMARY KEY, dataset VARCHAR "
                "NOT NULL, created_at TIMESTAMPTZ NOT NULL, n_interactions BIGINT NOT NULL, "
                "n_items BIGINT NOT NULL)")
    con.close()
    wh = Warehouse(path)
    snap = wh.load(make_dataset())
    assert wh.snapshots().filter(pl.col("snapshot_id") == snap)["parent_id"].item() is None
    assert wh.append(increment()) != snap


def test_split_labels_travel_to_the_features(tmp_path: Path) -> None:
    labels = ["train", "train", "test", None]
    data = make_dataset()
    data = Dataset(data.name, data.interactions.with_columns(pl.Series(S.SPLIT, labels)),
                   data.items)
    bad = make_quarantine()["interactions"].with_columns(pl.lit("test").alias(S.SPLIT))
    wh = Warehouse(tmp_path / "wh.duckdb")
    snap = wh.load(data, {"interactions": bad})
    assert snap != snapshot_id(make_dataset())  # the labels are part of the content
    by_pair = {(r[S.USER_ID], r[S.ITEM_ID]): r[S.SPLIT]
               for r in wh.interactions(snap).iter_rows(named=True)}
    assert by_pair == {("u2", "i1"): "train", ("u1", "i1"): "train", ("u1", "i2"): "test",
                       ("u3", "i3"): None}
    features = build_features(wh, snap)
    assert dict(zip(zip(features.interactions[S.USER_ID], features.interactions[S.ITEM_ID],
                        strict=True), features.interactions[S.SPLIT], strict=True)) == by_pair
    assert wh.quarantined("interactions")[S.SPLIT].to_list() == ["test"]


def test_older_warehouse_file_gains_the_split_column(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    Warehouse(path)
    con = duckdb.connect(str(path))
    for table in ("raw_interactions", "clean_interactions", "quarantine_interactions"):
        con.execute(f'ALTER TABLE {table} DROP COLUMN "split"')  # as written before it existed
    con.close()
    wh = Warehouse(path)
    snap = wh.load(make_dataset())
    assert wh.interactions(snap)[S.SPLIT].to_list() == [None] * 4
    assert counts(path)["raw_interactions"] == 4
