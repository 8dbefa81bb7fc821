"""The generic layout: ``interactions.{csv,parquet}`` + ``items.{csv,parquet}`` (+ ``users.*``).

interactions: ``user_id``, ``item_id`` and optionally ``timestamp`` or ``ts`` (unix seconds or
ISO-8601), ``rating``, ``event``, ``weight`` (an explicit weight or play count) and ``split``
(``train``, ``valid`` or ``test``, any case: a published split, for the ``given`` protocol).
Without a timestamp column, rows get synthetic increasing timestamps in file order.
items: ``item_id``, ``title`` and optionally ``text`` and ``categories`` or ``genres``
(``|``-separated, or a list column in Parquet).
users: ``user_id`` plus any attribute columns, kept as text.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.data.layout import Layout

NAME = "generic"
DESCRIPTION = "generic (interactions.csv|parquet + items.csv|parquet [+ users.*])"
_INTERACTION_COLUMNS = (S.USER_ID, S.ITEM_ID, "timestamp", S.TS, S.RATING, S.EVENT, S.WEIGHT,
                        S.SPLIT)
_ITEM_COLUMNS = (S.ITEM_ID, S.TITLE, S.TEXT, S.CATEGORIES, "genres")

logger = logging.getLogger(__name__)


def _find(directory: Path, stem: str) -> Path | None:
    return next((p for p in (directory / f"{stem}.parquet", directory / f"{stem}.csv")
                 if p.is_file()), None)


def detect(directory: Path) -> bool:
    """Whether ``directory`` holds generic interactions and items files."""
    return _find(directory, "interactions") is not None and _find(directory, "items") is not None


def load(directory: Path) -> Dataset:
    """Read a generic-layout directory into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
    """
    inter_path, items_path = _find(directory, "interactions"), _find(directory, "items")
    if inter_path is None or items_path is None:
        raise DataError(f"{directory}: not a {DESCRIPTION} directory")
    users_path = _find(directory, "users")
    return Dataset(
        name=directory.name,
        interactions=read_interactions(inter_path),
        items=read_items(items_path),
        users=read_users(users_path) if users_path else None,
    )


LAYOUT = Layout(NAME, DESCRIPTION, detect, load)


def read_interactions(path: Path) -> pl.DataFrame:
    """Canonical interactions (+ meta columns) from a generic interactions file."""
    raw = P.read_table(path)
    P.require(raw, path, S.INTERACTIONS_REQUIRED)
    P.require_scalar(raw, path, _INTERACTION_COLUMNS)
    _log_ignored(raw, path, _INTERACTION_COLUMNS)
    columns = {S.USER_ID: P.as_text(S.USER_ID), S.ITEM_ID: P.as_text(S.ITEM_ID)}
    ts = P.first_present(raw, "timestamp", S.TS)
    columns[S.TS] = P.as_timestamp(raw, ts, S.TS) if ts else P.synthetic_timestamps()
    if S.RATING in raw.columns:
        columns[S.RATING] = P.as_float(raw, S.RATING, S.RATING)
    if S.EVENT in raw.columns:
        columns[S.EVENT] = P.as_text(S.EVENT)
    if S.WEIGHT in raw.columns:
        columns[S.WEIGHT] = P.as_float(raw, S.WEIGHT, S.WEIGHT)
    if S.SPLIT in raw.columns:
        columns[S.SPLIT] = P.Parsed(P.as_text(S.SPLIT).value.str.to_lowercase())
    return P.assemble(raw, columns, S.INTERACTIONS_SCHEMA)


def read_items(path: Path) -> pl.DataFrame:
    """Canonical items (+ meta columns) from a generic items file."""
    raw = P.read_table(path)
    P.require(raw, path, S.ITEMS_REQUIRED)
    P.require_scalar(raw, path, _ITEM_COLUMNS[:3])
    _log_ignored(raw, path, _ITEM_COLUMNS)
    columns = {S.ITEM_ID: P.as_text(S.ITEM_ID), S.TITLE: P.as_text(S.TITLE)}
    if S.TEXT in raw.columns:
        columns[S.TEXT] = P.as_text(S.TEXT)
    cats = P.first_present(raw, S.CATEGORIES, "genres")
    if cats:
        columns[S.CATEGORIES] = P.as_categories(raw, cats)
    return P.assemble(raw, columns, S.ITEMS_SCHEMA)


def read_users(path: Path) -> pl.DataFrame:
    """``user_id`` plus attribute columns as text, with meta columns (encoding errors only)."""
    raw = P.read_table(path)
    P.require(raw, path, (S.USER_ID,))
    attributes = [c for c in raw.columns if c not in (S.USER_ID, P.ROW, P.ENCODING_ERROR)]
    P.require_scalar(raw, path, (S.USER_ID, *attributes))
    return raw.select(
        P.as_text(S.USER_ID).value.alias(S.USER_ID),
        *(P.as_text(c).value.alias(c) for c in attributes),
        pl.col(P.ROW),
        (pl.col(P.ENCODING_ERROR) if P.ENCODING_ERROR in raw.columns
         else pl.lit(None, dtype=pl.String)).alias(P.PARSE_ERROR),
    )


def _log_ignored(raw: pl.DataFrame, path: Path, known: tuple[str, ...]) -> None:
    ignored = [c for c in raw.columns if c not in (*known, P.ROW, P.ENCODING_ERROR)]
    if ignored:
        logger.info("%s: ignoring unknown columns %s", path, ", ".join(ignored))
