"""Read one source file into a frame of text columns, numbered by record.

Delimited text is decoded first (UTF-8 by default, or e.g. ``latin-1``), so any encoding,
CRLF line endings, a byte-order mark and multi-character separators (``::``) are handled
before Polars parses it. Every column is read as text; parsing into canonical types happens
in ``parse``. The frame carries ``_row`` (1-based record number, header excluded, counted
before blank lines are skipped) and, when a UTF-8 file held invalid bytes, ``_encoding_error``
naming the columns of each affected row (the bytes are replaced by U+FFFD). Inside
``preview(n)`` only the first ``n`` records of each file are read.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import polars as pl

from recsys_core.data.errors import DataError

ROW = "_row"
ENCODING_ERROR = "_encoding_error"
_SEPARATOR = "\x1f"  # stands in for a multi-character separator
_REPLACEMENT = "\ufffd"

logger = logging.getLogger(__name__)
_preview: ContextVar[int | None] = ContextVar("preview", default=None)


@contextmanager
def preview(records: int) -> Iterator[None]:
    """Within the block, ``read_table`` reads only the first ``records`` records of a file.

    Reading a dataset's files this way checks their headers, required columns and first values
    for a few kilobytes per file, whatever their size. Where the cut would end a text file
    inside a quoted field (the cut part does not parse), the whole file is read.

    Args:
        records: records read per file (the header line is extra).
    """
    token = _preview.set(records)
    try:
        yield
    finally:
        _preview.reset(token)


def read_table(path: Path, separator: str = ",", *, columns: Sequence[str] | None = None,
               encoding: str = "utf-8", quote: str | None = '"') -> pl.DataFrame:
    """Read a delimited text file (every column as text) or a Parquet file.

    Args:
        path: a ``.parquet`` file, or a delimited text file of any other name.
        separator: the field separator (more than one character is allowed).
        columns: the column names of a header-less file; ``None`` reads them from the header.
        encoding: the text encoding; invalid UTF-8 bytes are marked, not fatal.
        quote: the quote character, or ``None`` when fields are never quoted.

    Raises:
        DataError: the file is missing, empty or unreadable (one line naming it).
    """
    limit = _preview.get()
    if path.suffix == ".parquet":
        frame = _guard(path, lambda: pl.read_parquet(path, n_rows=limit))
        return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    raw, cut = _read_bytes(path, limit)
    try:
        return _parse(raw, path, separator, columns, encoding, quote)
    except DataError:
        if not cut:
            raise
        return _parse(_read_bytes(path, None)[0], path, separator, columns, encoding, quote)


def _read_bytes(path: Path, records: int | None) -> tuple[bytes, bool]:
    """The file's bytes, or its first ``records`` + 1 lines and whether more followed."""
    try:
        if records is None:
            return path.read_bytes(), False
        with path.open("rb") as handle:
            head = b"".join(itertools.islice(handle, records + 1))
            return head, bool(handle.read(1))
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def _parse(raw: bytes, path: Path, separator: str, columns: Sequence[str] | None,
           encoding: str, quote: str | None) -> pl.DataFrame:
    text, invalid = _decode(raw, path, encoding)
    if len(separator) > 1:
        text, separator = text.replace(separator, _SEPARATOR), _SEPARATOR
    data = io.BytesIO(text.encode())
    schema = None if columns is None else dict.fromkeys(columns, pl.String())
    frame = _guard(path, lambda: pl.read_csv(
        data, separator=separator, has_header=columns is None, schema=schema,
        infer_schema=False, truncate_ragged_lines=True, quote_char=quote))
    values = frame.columns
    frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    if values:
        frame = frame.filter(~pl.all_horizontal(pl.col(values).is_null()))  # blank lines
    if invalid:
        frame = _mark_invalid(frame, values, path)
    return frame


def _guard(path: Path, read: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    try:
        return read()
    except (OSError, pl.exceptions.PolarsError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read file ({message})") from exc


def _decode(raw: bytes, path: Path, encoding: str) -> tuple[str, bool]:
    if not raw.strip():
        raise DataError(f"{path}: empty file")
    try:
        return raw.decode(encoding).removeprefix("\ufeff"), False
    except UnicodeDecodeError as exc:
        if encoding.replace("-", "").lower() != "utf8":
            raise DataError(f"{path}: not {encoding} text (byte {exc.start})") from exc
        return raw.decode(encoding, errors="replace").removeprefix("\ufeff"), True


def _mark_invalid(frame: pl.DataFrame, columns: list[str], path: Path) -> pl.DataFrame:
    parts = [pl.when(pl.col(c).str.contains(_REPLACEMENT, literal=True))
             .then(pl.format("{}: invalid UTF-8 bytes in '{}'", pl.lit(c), pl.col(c)))
             for c in columns]
    message = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    frame = frame.with_columns(pl.when(message != "").then(message).alias(ENCODING_ERROR))
    bad = frame[ENCODING_ERROR].is_not_null().sum()
    logger.warning("%s: %d row(s) hold invalid UTF-8 bytes (marked as parse errors)", path, bad)
    return frame
