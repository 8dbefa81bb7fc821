from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from recsys_core.data import schema as S
from recsys_core.data.files import preview
from recsys_core.data.loaders import (
    PARSE_ERROR,
    ROW,
    DataError,
    check_dataset,
    detect_layout,
    has_times,
    load_dataset,
)
from tests.data.test_layouts import lastfm_files

CANONICAL_INTERACTIONS = [*S.INTERACTIONS_SCHEMA, ROW, PARSE_ERROR]
CANONICAL_ITEMS = [*S.ITEMS_SCHEMA, ROW, PARSE_ERROR]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def generic_csv(tmp_path: Path) -> Path:
    write(tmp_path / "interactions.csv",
          "user_id,item_id,timestamp,rating,event\n"
          "u1,i1,0,4.5,view\n"
          "u1,i2,2020-01-02T03:04:05Z,3,click\n"
          "u2, i1 ,2020-01-02 03:04:05+02:00,,view\n"
          "u2,i3,2021-06-01,1,\n")
    write(tmp_path / "items.csv",
          "item_id,title,genres,text\n"
          'i1,"Alpha, the movie",Drama|Comedy,about alpha\n'
          "i2,Beta,,\n"
          "i3,Gamma, Action | ,\n")
    return tmp_path


def test_generic_csv(generic_csv: Path) -> None:
    data = load_dataset(generic_csv)
    assert data.name == generic_csv.name
    assert data.interactions.columns == CANONICAL_INTERACTIONS
    assert data.items.columns == CANONICAL_ITEMS
    assert data.interactions.schema[S.TS] == pl.Datetime("us", "UTC")
    inter = data.interactions
    assert inter[S.ITEM_ID].to_list() == ["i1", "i2", "i1", "i3"]
    assert inter[S.TS].to_list() == [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2020, 1, 2, 1, 4, 5, tzinfo=UTC),
        datetime(2021, 6, 1, tzinfo=UTC),
    ]
    assert inter[S.RATING].to_list() == [4.5, 3.0, None, 1.0]
    assert inter[S.EVENT].to_list() == ["view", "click", "view", None]
    assert inter[S.WEIGHT].to_list() == [1.0] * 4
    assert inter[ROW].to_list() == [1, 2, 3, 4]
    assert inter[PARSE_ERROR].null_count() == 4
    items = data.items
    assert items[S.TITLE].to_list() == ["Alpha, the movie", "Beta", "Gamma"]
    assert items[S.CATEGORIES].to_list() == [["Drama", "Comedy"], None, ["Action"]]
    assert items[S.TEXT].to_list() == ["about alpha", None, None]
    assert data.users is None


def test_generic_parquet_without_timestamps(tmp_path: Path) -> None:
    pl.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 10],
                  "weight": [3, 1, 12]}).write_parquet(tmp_path / "interactions.parquet")
    pl.DataFrame({"item_id": [10, 11], "title": ["A", "B"],
                  "categories": [["x", "y"], []]}).write_parquet(tmp_path / "items.parquet")
    pl.DataFrame({"user_id": [1, 2], "age": [30, 40]}).write_csv(tmp_path / "users.csv")
    data = load_dataset(tmp_path)
    inter = data.interactions
    assert inter[S.USER_ID].to_list() == ["1", "1", "2"]
    assert inter[S.WEIGHT].to_list() == [3.0, 1.0, 12.0]
    assert inter[S.TS].is_sorted() and inter[S.TS].n_unique() == 3  # synthetic, file order
    assert inter[PARSE_ERROR].null_count() == 3
    assert data.items[S.CATEGORIES].to_list() == [["x", "y"], []]
    assert data.users is not None and data.users["age"].to_list() == ["30", "40"]


def test_generic_split_column_is_read_as_lower_case_labels(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id,split\n"
          "u1,i1,train\nu1,i2, Valid \nu1,i3,TEST\nu2,i1,\nu2,i2,tset\n")
    write(tmp_path / "items.csv", "item_id,title\ni1,A\ni2,B\ni3,C\n")
    inter = load_dataset(tmp_path).interactions
    assert inter[S.SPLIT].to_list() == ["train", "valid", "test", None, "tset"]
    assert inter[PARSE_ERROR].null_count() == 5  # labels are judged by the validator


def test_parquet_datetime_column(tmp_path: Path) -> None:
    ts = [datetime(2020, 1, 1), datetime(2020, 1, 2)]
    pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "x"], "ts": ts}).write_parquet(
        tmp_path / "interactions.parquet")
    pl.DataFrame({"item_id": ["x"], "title": ["X"]}).write_parquet(tmp_path / "items.parquet")
    inter = load_dataset(tmp_path).interactions
    assert inter[S.TS].to_list() == [t.replace(tzinfo=UTC) for t in ts]


def test_bad_values_are_kept_and_marked(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv",
          "user_id,item_id,ts,rating,weight\n"
          "u1,i1,1600000000,4,1\n"
          "u1,i2,not-a-date,4,1\n"
          "u2,i1,1600000000,abc,1\n"
          "u2,i2,2020-13-45,inf,two\n"
          "u3,i1\n")
    write(tmp_path / "items.csv", "item_id,title\ni1,A\ni2,B\n")
    inter = load_dataset(tmp_path).interactions
    assert inter.height == 5
    errors = inter[PARSE_ERROR].to_list()
    assert errors[0] is None and errors[4] is None
    assert errors[1] == "ts: cannot parse 'not-a-date' as timestamp"
    assert errors[2] == "rating: cannot parse 'abc' as number"
    assert errors[3] == ("ts: cannot parse '2020-13-45' as timestamp; "
                         "rating: cannot parse 'inf' as number; "
                         "weight: cannot parse 'two' as number")
    assert inter[S.TS].null_count() == 3  # the two bad ones and the short row
    assert inter[ROW].to_list() == [1, 2, 3, 4, 5]


def test_movielens_layout_small(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv",
          "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,2,0.5,964981247\r\n")
    write(tmp_path / "movies.csv",
          'movieId,title,genres\r\n1,"Toy Story, The (1995)",Adventure|Animation\r\n'
          "2,Nothing (2000),(no genres listed)\r\n")
    write(tmp_path / "tags.csv",
          "userId,movieId,tag,timestamp\r\n1,1,pixar,1\r\n2,1,fun,2\r\n3,1,pixar,3\r\n"
          "4,99,orphan,4\r\n")
    assert detect_layout(tmp_path).name == "movielens-latest"
    data = load_dataset(tmp_path)
    assert data.interactions[S.RATING].to_list() == [4.0, 0.5]
    assert data.interactions[S.TS][0] == datetime.fromtimestamp(964982703, UTC)
    items = data.items
    assert items[S.TITLE].to_list() == ["Toy Story, The (1995)", "Nothing (2000)"]
    assert items[S.CATEGORIES].to_list() == [["Adventure", "Animation"], []]
    assert items[S.TEXT].to_list() == ["pixar, fun", None]


def test_ml_latest_small(shared_data: Path) -> None:
    data = load_dataset(shared_data / "ml-latest-small")
    inter, items = data.interactions, data.items
    assert inter.height == 100836 and items.height == 9742
    assert inter[S.USER_ID].n_unique() == 610
    assert inter[PARSE_ERROR].null_count() == inter.height
    assert items[PARSE_ERROR].null_count() == items.height
    assert inter[S.TS].min().year == 1996 and inter[S.TS].max().year == 2018
    assert inter[S.RATING].min() == 0.5 and inter[S.RATING].max() == 5.0
    toy = items.row(0, named=True)
    assert toy[S.TITLE] == "Toy Story (1995)"
    assert "pixar" in toy[S.TEXT]
    assert toy[S.CATEGORIES] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]


def test_unknown_layout(tmp_path: Path) -> None:
    write(tmp_path / "stuff.txt", "x")
    write(tmp_path / "interactions.csv", "user_id,item_id\n")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path) in message
    assert "interactions.csv, stuff.txt" in message
    assert "generic" in message and "MovieLens" in message
    assert isinstance(info.value, ValueError)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        load_dataset(tmp_path / "missing")


@pytest.mark.parametrize(("file", "header", "column"), [
    ("interactions.csv", "user,item_id", "user_id"),
    ("items.csv", "item_id,name", "title"),
])
def test_missing_required_column(tmp_path: Path, file: str, header: str, column: str) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id\nu,i\n")
    write(tmp_path / "items.csv", "item_id,title\ni,I\n")
    write(tmp_path / file, header + "\nu,i\n")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    message = str(info.value)
    assert "\n" not in message and file in message and f"'{column}'" in message


def test_missing_movielens_column(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", "userId,movieId,rating\n1,1,4\n")
    write(tmp_path / "movies.csv", "movieId,title,genres\n1,A,B\n")
    with pytest.raises(DataError, match=r"ratings\.csv: missing required column 'timestamp'"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(("file", "header", "column"), [
    ("interactions.csv", "user,item_id", "user_id"),
    ("items.csv", "item_id,name", "title"),
])
def test_check_dataset_finds_a_missing_column_as_loading_would(
        tmp_path: Path, file: str, header: str, column: str) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id\nu,i\n")
    write(tmp_path / "items.csv", "item_id,title\ni,I\n")
    assert check_dataset(str(tmp_path)) == "generic"
    write(tmp_path / file, header + "\nu,i\n")
    with pytest.raises(DataError) as checked:
        check_dataset(str(tmp_path))
    with pytest.raises(DataError) as loaded:
        load_dataset(tmp_path)
    assert str(checked.value) == str(loaded.value)
    assert "\n" not in str(checked.value) and f"'{column}'" in str(checked.value)


def test_check_dataset_reads_the_first_records_and_logs_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = "".join(f"u{i % 7},i{i % 5}\n" for i in range(3000))
    write(tmp_path / "interactions.csv", "user_id,item_id,extra\n" + rows + '"unclosed\n')
    (tmp_path / "items.csv").write_bytes(b"item_id,title\ni1,caf\xe9\n")
    with pytest.raises(DataError, match="cannot read file"):
        load_dataset(tmp_path)  # the last line does not parse
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        assert check_dataset(str(tmp_path), records=50) == "generic"
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG), preview(50):
        load_dataset(tmp_path)  # the readers alone log the extra column and the bad bytes
    assert {r.levelname for r in caplog.records} == {"INFO", "WARNING"}
    with pytest.raises(DataError, match="not a directory"):
        check_dataset(str(tmp_path / "missing"))


def test_check_dataset_parses_the_synthetic_size() -> None:
    assert check_dataset("synthetic") == check_dataset("synthetic:500") == "synthetic"
    with pytest.raises(ValueError, match="synthetic:N with N >= 100"):
        check_dataset("synthetic:lots")


def test_has_times_tells_timed_data_from_a_source_without_order(tmp_path: Path) -> None:
    (tmp_path / "timed").mkdir()
    write(tmp_path / "timed" / "interactions.csv", "user_id,item_id,timestamp\nu,i,1\n")
    write(tmp_path / "timed" / "items.csv", "item_id,title\ni,I\n")
    assert has_times("synthetic") and has_times(str(tmp_path / "timed"))
    assert not has_times(str(lastfm_files(tmp_path / "lastfm", header=False)))
