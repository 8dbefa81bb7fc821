"""Tolerant column parsing: unparseable values become null and are reported, never dropped.

Every frame a loader returns carries two meta columns next to the canonical ones:

- ``_row`` (Int64): the 1-based record number in the source file, header excluded (for a CSV
  without multi-line fields the file line is ``_row + 1``).
- ``_parse_error`` (String): null when every value parsed, else ``"column: message"`` parts
  joined by ``"; "``, quoting the raw value (invalid UTF-8 bytes included, see ``files``).
  The validator quarantines such rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.errors import DataError
from recsys_core.data.files import ENCODING_ERROR, ROW, read_table

__all__ = ["ENCODING_ERROR", "META_COLUMNS", "PARSE_ERROR", "ROW", "Parsed", "as_categories",
           "as_float", "as_text", "as_timestamp", "assemble", "first_present", "no_timestamps",
           "read_table", "require", "require_scalar", "strip_meta", "synthetic_timestamps"]

PARSE_ERROR = "_parse_error"
META_COLUMNS = (ROW, PARSE_ERROR)

_DATETIME = pl.Datetime("us", "UTC")
_ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


@dataclass(frozen=True)
class Parsed:
    """A canonical column: its value and an optional error message (null when fine)."""

    value: pl.Expr
    error: pl.Expr | None = None


def require(frame: pl.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    """Raise ``DataError`` naming ``path`` and the first of ``columns`` missing from ``frame``.

    Args:
        frame: the frame as read.
        path: the file it came from.
        columns: required source column names.
    """
    for column in columns:
        if column not in frame.columns:
            found = ", ".join(c for c in frame.columns if c not in (ROW, ENCODING_ERROR))
            raise DataError(f"{path}: missing required column '{column}' (found: {found})")


def require_scalar(frame: pl.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    """Raise ``DataError`` when one of ``columns`` holds nested or binary values (Parquet).

    Args:
        frame: the frame as read.
        path: the file it came from.
        columns: source columns that must hold text, numbers or timestamps.
    """
    for column in columns:
        dtype = frame.schema.get(column)
        if dtype is not None and (dtype.is_nested() or dtype in (pl.Binary, pl.Object)):
            raise DataError(f"{path}: column '{column}' has type {dtype}, "
                            "expected text, numbers or timestamps")


def first_present(frame: pl.DataFrame, *names: str) -> str | None:
    """Return the first of ``names`` that is a column of ``frame``, else ``None``."""
    return next((name for name in names if name in frame.columns), None)


def as_text(column: str) -> Parsed:
    """Text with surrounding whitespace stripped; empty strings become null."""
    value = pl.col(column).cast(pl.String).str.strip_chars()
    return Parsed(pl.when(value != "").then(value))


def as_float(frame: pl.DataFrame, column: str, name: str) -> Parsed:
    """Parse a finite Float64 from a text or numeric column; others become null + error.

    Args:
        frame: the source frame (its dtype decides the parse path).
        column: the source column.
        name: the canonical column name used in error messages.
    """
    numeric = frame.schema[column].is_numeric()
    raw = pl.col(column) if numeric else as_text(column).value
    parsed = raw.cast(pl.Float64, strict=False)
    value = pl.when(parsed.is_finite()).then(parsed)
    return Parsed(value, _error(raw, value, name, "number"))


def as_timestamp(frame: pl.DataFrame, column: str, name: str) -> Parsed:
    """Parse a UTC timestamp from unix seconds, an ISO-8601 string or a datetime column.

    Naive datetimes are taken as UTC; offsets are converted to UTC.

    Args:
        frame: the source frame (its dtype decides the parse path).
        column: the source column.
        name: the canonical column name used in error messages.
    """
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime):
        col = pl.col(column)
        value = (col.dt.convert_time_zone("UTC") if dtype.time_zone
                 else col.dt.replace_time_zone("UTC"))
        return Parsed(value.cast(_DATETIME))
    if dtype == pl.Date:
        return Parsed(pl.col(column).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    raw = as_text(column).value
    seconds = raw.cast(pl.Float64, strict=False)
    micros = pl.when(seconds.is_finite() & (seconds.abs() < 1e13)).then(seconds * 1e6)
    from_epoch = micros.cast(pl.Int64, strict=False).cast(_DATETIME)
    from_iso = [raw.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
                for fmt in _ISO_FORMATS]
    value = pl.coalesce(from_epoch, *from_iso)
    return Parsed(value, _error(raw, value, name, "timestamp"))


def synthetic_timestamps(offset: int = 0) -> Parsed:
    """Increasing timestamps in file order (``_row + offset`` seconds after the epoch).

    Args:
        offset: added to every row number (the rows of the files read before this one, when
            several files hold one table in order).
    """
    return Parsed(pl.from_epoch(pl.col(ROW) + offset, time_unit="s").cast(_DATETIME))


def no_timestamps() -> Parsed:
    """Null timestamps, for a source whose rows have no time and no order.

    The sequence models then read each user's items as a set (a new random order every
    epoch) instead of an order the file happens to be sorted in.
    """
    return Parsed(pl.lit(None, dtype=_DATETIME))


def as_categories(frame: pl.DataFrame, column: str, ignore: tuple[str, ...] = (),
                  separator: str = "|") -> Parsed:
    """Parse a list of categories from a ``separator``-separated string or a list column.

    Args:
        frame: the source frame (its dtype decides the parse path).
        column: the source column.
        ignore: placeholder values to leave out (``"(no genres listed)"``).
        separator: the separator inside a string value.
    """
    col = pl.col(column)
    lists = (col.cast(pl.List(pl.String)) if isinstance(frame.schema[column], pl.List)
             else col.cast(pl.String).str.split(separator))
    cleaned = (lists.list.eval(pl.element().str.strip_chars())
               .list.filter((pl.element() != "") & ~pl.element().is_in(list(ignore))))
    return Parsed(cleaned)


def assemble(frame: pl.DataFrame, columns: dict[str, Parsed],
             schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Canonical columns (in ``schema`` order, cast) plus ``_row`` and ``_parse_error``.

    Args:
        frame: the source frame, with ``_row``.
        columns: canonical name -> parsed column; columns not given are null (weight 1.0).
        schema: ``INTERACTIONS_SCHEMA`` or ``ITEMS_SCHEMA``.
    """
    exprs = []
    for name, dtype in schema.items():
        if name in columns:
            exprs.append(columns[name].value.cast(dtype).alias(name))
        else:
            default = 1.0 if name == S.WEIGHT else None
            exprs.append(pl.lit(default, dtype=dtype).alias(name))
    errors = [p.error for p in columns.values() if p.error is not None]
    if ENCODING_ERROR in frame.columns:
        errors.insert(0, pl.col(ENCODING_ERROR))
    message = (pl.concat_str(errors, separator="; ", ignore_nulls=True) if errors
               else pl.lit(None, dtype=pl.String))
    error = pl.when(message != "").then(message).alias(PARSE_ERROR)
    return frame.select(*exprs, pl.col(ROW), error)


def assemble_ratings(frame: pl.DataFrame, user: str, item: str, rating: str,
                     timestamp: str) -> pl.DataFrame:
    """Canonical interactions (+ meta columns) of explicit ratings with unix-second times.

    Args:
        frame: text columns from ``read_table``.
        user: the user id column.
        item: the item id column.
        rating: the rating column.
        timestamp: the timestamp column (unix seconds or ISO-8601).
    """
    return assemble(frame, {
        S.USER_ID: as_text(user),
        S.ITEM_ID: as_text(item),
        S.TS: as_timestamp(frame, timestamp, S.TS),
        S.RATING: as_float(frame, rating, S.RATING),
    }, S.INTERACTIONS_SCHEMA)


def strip_meta(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` without the loader's meta columns."""
    return frame.drop([c for c in META_COLUMNS if c in frame.columns])


def _error(raw: pl.Expr, value: pl.Expr, name: str, kind: str) -> pl.Expr:
    return pl.when(raw.is_not_null() & value.is_null()).then(
        pl.format("{}: cannot parse '{}' as {}", pl.lit(name), raw, pl.lit(kind)))
