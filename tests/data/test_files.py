from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recsys_core.data.errors import DataError
from recsys_core.data.files import ENCODING_ERROR, ROW, preview, read_table


def test_crlf_bom_blank_lines_and_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa,b\r\n1,x\r\n\r\n2,\"y\r\nz\"\r\n3,w\r\n\r\n".encode())
    frame = read_table(path)
    assert frame.columns == [ROW, "a", "b"]
    assert frame["a"].to_list() == ["1", "2", "3"]
    assert frame["b"].to_list() == ["x", "y\r\nz", "w"]
    assert frame[ROW].to_list() == [1, 3, 4]  # the blank line keeps its number


def test_multi_character_separator_and_headerless(tmp_path: Path) -> None:
    path = tmp_path / "t.dat"
    path.write_bytes("1::Star Wars: Episode IV (1977)::Sci-Fi\n2::Café::\n".encode("latin-1"))
    frame = read_table(path, "::", columns=("id", "title", "genres"), encoding="latin-1",
                       quote=None)
    assert frame["title"].to_list() == ["Star Wars: Episode IV (1977)", "Café"]
    assert frame["genres"].to_list() == ["Sci-Fi", None]


def test_invalid_utf8_is_marked_per_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,title\n1,ok\n2,caf\xe9\n\xff3,bad\xfe\n")
    frame = read_table(path)
    assert frame[ENCODING_ERROR].to_list() == [
        None, "title: invalid UTF-8 bytes in 'caf\ufffd'",
        "id: invalid UTF-8 bytes in '\ufffd3'; title: invalid UTF-8 bytes in 'bad\ufffd'"]


@pytest.mark.parametrize(("content", "encoding", "message"), [
    (b"", "utf-8", "empty file"),
    (b" \n\r\n", "utf-8", "empty file"),
    (b"a,b\n\xe9,1\n", "ascii", "not ascii text"),
])
def test_unreadable(tmp_path: Path, content: bytes, encoding: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_table(path, encoding=encoding)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read file"):
        read_table(tmp_path / "nope.csv")


def test_preview_reads_the_first_records_only(tmp_path: Path) -> None:
    text = tmp_path / "t.csv"
    text.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(1, 5001)) + '9,"unclosed\n')
    with pytest.raises(DataError, match="cannot read file"):
        read_table(text)  # the last line does not parse
    with preview(3):
        frame = read_table(text)
    assert frame["a"].to_list() == ["1", "2", "3"] and frame[ROW].to_list() == [1, 2, 3]
    parquet = tmp_path / "t.parquet"
    pl.DataFrame({"a": list(range(100))}).write_parquet(parquet)
    with preview(4):
        assert read_table(parquet)["a"].to_list() == [0, 1, 2, 3]
    assert read_table(parquet).height == 100  # outside the block: every record


def test_preview_reads_the_whole_file_when_the_cut_splits_a_quoted_field(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"two\nlines"\n2,y\n')
    with preview(1):
        frame = read_table(path)
    assert frame["b"].to_list() == ["two\nlines", "y"]
