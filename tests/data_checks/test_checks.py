from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from data_checks import check_interactions, check_items, validate_dataset
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.loaders import ROW, DataError, load_dataset


def ts(day: int) -> datetime:
    return datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=day)


def interactions(rows: list[tuple]) -> pl.DataFrame:
    users, items, times, ratings = zip(*rows, strict=True)
    frame = pl.DataFrame({S.USER_ID: users, S.ITEM_ID: items, S.TS: times, S.RATING: ratings},
                         schema_overrides={S.TS: pl.Datetime("us", "UTC"),
                                           S.RATING: pl.Float64})
    return S.conform(frame, S.INTERACTIONS_SCHEMA)


def items(ids: list[str | None], titles: list[str | None] | None = None) -> pl.DataFrame:
    titles = titles or [f"title {i}" for i in ids]
    return S.conform(pl.DataFrame({S.ITEM_ID: ids, S.TITLE: titles}), S.ITEMS_SCHEMA)


GOOD = [("u1", "i1", ts(0), 4.0), ("u1", "i2", ts(1), 5.0), ("u2", "i1", ts(2), None)]


def test_clean_frames_pass() -> None:
    item_frame = items(["i1", "i2"])
    report = check_interactions(interactions(GOOD), item_frame)
    assert report.success and report.bad_rows.is_empty() and report.row_count == 3
    assert check_items(item_frame).success


def test_interaction_failures_name_expectations() -> None:
    future = datetime.now(UTC) + timedelta(days=30)
    rows = [*GOOD,
            (None, "i1", ts(3), 1.0),                                     # 3 null user
            ("u3", "i9", ts(3), 1.0),                                     # 4 unknown item
            ("u3", "i1", ts(3), 11.0),                                    # 5 rating range
            ("u3", "i2", future, 1.0),                                    # 6 future
            ("u3", "i2", datetime(1960, 1, 1, tzinfo=UTC), 1.0)]          # 7 before 1970
    report = check_interactions(interactions(rows), items(["i1", "i2"]))
    assert not report.success and report.table_failures == []
    reasons = dict(zip(report.bad_rows["_index"].to_list(), report.bad_rows["reason"],
                       strict=True))
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert reasons[3] == "expect_column_values_to_not_be_null(user_id)"
    assert reasons[4] == "expect_column_values_to_be_in_set(item_id)"
    assert reasons[5] == "expect_column_values_to_be_between(rating)"
    assert reasons[6] == reasons[7] == "expect_column_values_to_be_between(ts)"
    assert report.invalid_rows == 5 and report.duplicate_rows == report.superseded_rows == 0


def test_keys_are_judged_among_valid_rows_and_the_last_row_wins() -> None:
    rows = [("u1", "i1", ts(0), 4.0),    # 0 good
            ("u1", "i1", ts(0), 11.0),   # 1 bad copy of 0 (rating out of range), after it
            ("u2", "i1", ts(1), 12.0),   # 2 bad copy of 3, before it
            ("u2", "i1", ts(1), 3.0),    # 3 good
            ("u1", "i2", ts(2), 5.0),    # 4 exact duplicate of 5
            ("u1", "i2", ts(2), 5.0),    # 5 kept
            ("u2", "i2", ts(3), 1.0),    # 6 exact duplicate of 8 (the last value wins)
            ("u2", "i2", ts(3), 2.0),    # 7 superseded by 8
            ("u2", "i2", ts(3), 1.0),    # 8 kept
            ("u3", "i2", ts(4), None),   # 9 superseded by 10 (a null rating differs)
            ("u3", "i2", ts(4), 2.0)]    # 10 kept
    report = check_interactions(interactions(rows), items(["i1", "i2"]))
    reasons = dict(zip(report.bad_rows["_index"].to_list(), report.bad_rows["reason"],
                       strict=True))
    rating = "expect_column_values_to_be_between(rating)"
    assert reasons == {1: rating, 2: rating, 4: "duplicate", 6: "duplicate",
                       7: "superseded", 9: "superseded"}
    assert (report.invalid_rows, report.duplicate_rows, report.superseded_rows) == (2, 2, 2)
    unique = next(o for o in report.outcomes if "unique" in o.expectation)
    assert unique.expectation == "expect_compound_columns_to_be_unique(user_id,item_id,ts)"
    assert (unique.success, unique.unexpected_count, unique.row_level) == (False, 4, True)
    result = validate_dataset(Dataset("keys", interactions(rows), items(["i1", "i2"])), 0.2)
    clean = result.dataset.interactions.select(S.USER_ID, S.ITEM_ID, S.RATING).rows()
    assert clean == [("u1", "i1", 4.0), ("u2", "i1", 3.0), ("u1", "i2", 5.0),
                     ("u2", "i2", 1.0), ("u3", "i2", 2.0)]
    assert result.summary["tables"]["interactions"] | {"failed_expectations": None} == {
        "rows_read": 11, "rows_valid": 5, "rows_quarantined": 6, "rows_duplicate": 2,
        "rows_superseded": 2, "bad_share": 2 / 11, "failed_expectations": None}
    assert result.success  # 2 of 11 bad is under 20%: duplicates and superseded are not bad


def test_item_failures_and_the_last_item_row_wins() -> None:
    frame = items(["a", "b", "a", None, "c", "b"],
                  ["A", "B", "A again", "N", "x" * 2000, "B"])
    report = check_items(frame)
    reasons = dict(zip(report.bad_rows["_index"].to_list(), report.bad_rows["reason"],
                       strict=True))
    assert reasons == {
        0: "superseded",
        1: "duplicate",
        3: "expect_column_values_to_not_be_null(item_id)",
        4: "expect_column_value_lengths_to_be_between(title)",
    }


def test_missing_column_is_a_table_failure() -> None:
    report = check_items(pl.DataFrame({S.ITEM_ID: ["a"]}))
    assert not report.success
    assert report.table_failures
    assert all(o.error for o in report.table_failures)


def test_empty_table_fails_validation() -> None:
    data = Dataset("empty", interactions(GOOD).clear(), items(["i1"]))
    result = validate_dataset(data, threshold=0.5)
    assert not result.success
    with pytest.raises(DataError, match="table checks failed"):
        result.raise_if_failed()


def with_split(frame: pl.DataFrame, labels: list[str | None]) -> pl.DataFrame:
    return frame.with_columns(pl.Series(S.SPLIT, labels, dtype=pl.String))


def test_bad_split_labels_are_quarantined_with_reasons() -> None:
    rows = [*GOOD, ("u2", "i2", ts(3), None), ("u3", "i1", ts(4), None)]
    frame = with_split(interactions(rows), ["train", "valid", "test", None, "tset"])
    report = check_interactions(frame, items(["i1", "i2"]))
    reasons = dict(zip(report.bad_rows["_index"].to_list(), report.bad_rows["reason"],
                       strict=True))
    assert reasons == {3: "expect_column_values_to_not_be_null(split)",
                       4: "expect_column_values_to_be_in_set(split)"}
    assert report.invalid_rows == 2


def test_split_labels_are_optional_and_one_key_keeps_one_label() -> None:
    unlabelled = check_interactions(interactions(GOOD), items(["i1", "i2"]))
    assert unlabelled.success  # no label at all: no split, nothing to judge
    same_key = [GOOD[0], GOOD[0]]  # the same (user, item, ts) labelled train, then test
    report = check_interactions(with_split(interactions(same_key), ["train", "test"]),
                                items(["i1"]))
    assert report.bad_rows.rows() == [(0, "superseded")]  # the later label wins


def test_time_is_all_or_nothing() -> None:
    """A source without time (every ts null) passes and keeps every row; where rows do carry
    time, a row without it is quarantined."""
    timeless = [(u, i, None, r) for u, i, _, r in GOOD]
    report = check_interactions(interactions(timeless), items(["i1", "i2"]))
    assert report.success and report.bad_rows.is_empty() and report.row_count == 3
    mixed = check_interactions(interactions([*GOOD, ("u2", "i2", None, 1.0)]),
                               items(["i1", "i2"]))
    assert mixed.bad_rows.rows() == [(3, "expect_column_values_to_not_be_null(ts)")]


@pytest.fixture
def messy_dir(tmp_path: Path) -> Path:
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,ts,rating\n"
        "u1,i1,1600000000,4\n"       # 1 superseded by row 9
        "u1,i2,1600000100,5\n"       # 2 good
        "u2,i1,yesterday,3\n"        # 3 bad timestamp
        "u2,i2,1600000200,abc\n"     # 4 bad rating
        "u2,i3,1600000300,4\n"       # 5 item i3 is quarantined -> orphan
        "u3,i9,1600000400,4\n"       # 6 unknown item
        ",i1,1600000500,4\n"         # 7 missing user
        "u3,i1,1600000600,\n"        # 8 good (no rating)
        "u1,i1,1600000000,2\n"       # 9 good: same key as row 1, a later rating
        "u4,i2,1600000700,4.5\n")    # 10 good
    (tmp_path / "items.csv").write_text(
        "item_id,title,genres\n"
        "i1,One,Drama\n"             # 1 superseded by row 4
        "i2,Two,\n"
        "i3,,Drama\n"                # 3 missing title
        "i1,One again,\n")           # 4 same id as row 1, later: wins
    return tmp_path


def test_validate_dataset_quarantines_with_reasons(messy_dir: Path) -> None:
    result = validate_dataset(load_dataset(messy_dir), threshold=0.6)
    clean, bad = result.dataset, result.quarantine
    assert clean.interactions.columns == list(S.INTERACTIONS_SCHEMA)
    assert clean.items.columns == list(S.ITEMS_SCHEMA)
    assert clean.items.select(S.ITEM_ID, S.TITLE).rows() == [("i2", "Two"), ("i1", "One again")]
    assert bad["items"][ROW].to_list() == [1, 3]
    assert bad["items"]["reason"].to_list() == [
        "superseded",
        "expect_column_values_to_not_be_null(title)",
    ]
    assert clean.interactions.select(S.TS, S.RATING).rows() == [
        (datetime.fromtimestamp(t, UTC), r)
        for t, r in ((1600000100, 5.0), (1600000600, None), (1600000000, 2.0),
                     (1600000700, 4.5))]
    quarantined = dict(zip(bad["interactions"][ROW].to_list(), bad["interactions"]["reason"],
                           strict=True))
    assert sorted(quarantined) == [1, 3, 4, 5, 6, 7]
    assert quarantined[1] == "superseded"
    assert quarantined[3] == ("expect_column_values_to_not_be_null(ts); "
                              "expect_column_values_to_be_null(_parse_error): "
                              "ts: cannot parse 'yesterday' as timestamp")
    assert quarantined[4] == ("expect_column_values_to_be_null(_parse_error): "
                              "rating: cannot parse 'abc' as number")
    assert quarantined[5] == quarantined[6] == "expect_column_values_to_be_in_set(item_id)"
    assert "expect_column_values_to_not_be_null(user_id)" in quarantined[7]
    assert bad["interactions"].columns == [*S.INTERACTIONS_SCHEMA, ROW, "reason"]
    summary = result.summary
    assert summary["tables"]["interactions"] | {"failed_expectations": None} == {
        "rows_read": 10, "rows_valid": 4, "rows_quarantined": 6, "rows_duplicate": 0,
        "rows_superseded": 1, "bad_share": 0.5, "failed_expectations": None}
    assert summary["tables"]["items"]["rows_quarantined"] == 2
    assert summary["tables"]["items"]["bad_share"] == 0.25
    assert summary["success"] and result.success
    result.raise_if_failed()


def test_threshold_exceeded(messy_dir: Path) -> None:
    result = validate_dataset(load_dataset(messy_dir), threshold=0.2)
    assert not result.success and not result.summary["success"]
    with pytest.raises(DataError) as info:
        result.raise_if_failed()
    message = str(info.value)
    assert "\n" not in message
    assert "interactions: 50.0% of 10 rows bad (threshold 20.0%)" in message
    assert "items: 25.0% of 4 rows bad" in message


def test_data_docs_written_under_settings(messy_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    plain = validate_dataset(load_dataset(messy_dir), threshold=0.6)
    result = validate_dataset(load_dataset(messy_dir), threshold=0.6, data_docs=True)
    assert plain.data_docs is None
    assert result.data_docs == (tmp_path / "home" / "data_docs" / "index.html").resolve()
    assert result.data_docs.is_file()
    assert list((result.data_docs.parent / "validations").rglob("*.html"))
    assert result.summary == plain.summary
    assert result.quarantine["interactions"].equals(plain.quarantine["interactions"])


def test_row_count_bounds_are_table_checks() -> None:
    data = Dataset("bounded", interactions(GOOD), items(["i1", "i2"]))
    result = validate_dataset(data, threshold=0.0, row_bounds={"interactions": (1, 2)})
    assert not result.success
    assert result.reports["interactions"].table_failures[0].expectation == (
        "expect_table_row_count_to_be_between")
    with pytest.raises(DataError, match=r"interactions: table checks failed"):
        result.raise_if_failed()
    empty_items = Dataset("no-items", interactions(GOOD[:1]), items(["i1"]).clear())
    assert validate_dataset(empty_items, 0.0, row_bounds={"items": (0, None)},
                            known_item_ids=["i1"]).success


def test_event_values_and_lengths() -> None:
    frame = interactions(GOOD).with_columns(pl.Series(S.EVENT, ["view", "x" * 65, "teleport"]))
    loose = check_interactions(frame)
    assert loose.bad_rows["_index"].to_list() == [1]
    assert loose.bad_rows["reason"][0] == "expect_column_value_lengths_to_be_between(event)"
    strict = check_interactions(frame, event_values={"view", "click"})
    reasons = dict(zip(strict.bad_rows["_index"].to_list(), strict.bad_rows["reason"],
                       strict=True))
    assert reasons[2] == "expect_column_values_to_be_in_set(event)"
    assert sorted(reasons) == [1, 2]


def test_known_item_ids_extend_referential_integrity() -> None:
    frame = interactions([*GOOD, ("u3", "old", ts(5), 2.0), ("u3", "gone", ts(6), 2.0)])
    report = check_interactions(frame, items(["i1", "i2"]), known_item_ids=["old"])
    assert report.bad_rows["_index"].to_list() == [4]
    assert report.bad_rows["reason"][0] == "expect_column_values_to_be_in_set(item_id)"
    assert check_interactions(frame, known_item_ids=["i1", "i2", "old", "gone"]).success


def test_text_length_bound() -> None:
    frame = items(["a", "b"]).with_columns(pl.Series(S.TEXT, ["ok", "x" * 100_001]))
    report = check_items(frame)
    assert report.bad_rows["_index"].to_list() == [1]
    assert report.bad_rows["reason"][0] == "expect_column_value_lengths_to_be_between(text)"
