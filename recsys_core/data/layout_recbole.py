"""RecBole atomic files: ``<name>.inter`` + ``<name>.item`` (+ ``<name>.user``).

Tab-separated with a typed header (``item_id:token``, ``rating:float``,
``timestamp:float``, ``title:token_seq``); the types are checked (``token``, ``token_seq``,
``float``, ``float_seq``) and dropped from the names. inter: ``user_id``, ``item_id`` and
optionally ``rating`` and ``timestamp`` (unix seconds; file order otherwise). item:
``item_id`` and a title (``title``, ``movie_title``, ``item_name`` or ``name``), optionally
text (``text``, ``description`` or ``desc``) and categories (``categories``, ``genre``,
``genres`` or ``class``; a ``token_seq`` is space-separated). user: ``user_id`` + attributes.

A published split comes as RecBole's benchmark files (its ``benchmark_filename`` convention):
``<name>.train.inter`` + ``<name>.test.inter`` (+ ``<name>.valid.inter``) in place of
``<name>.inter``, which is then ignored. Their rows are read in that order, each with its file's
``split`` label; ``_row`` counts records within each file, and without timestamps the file order
continues across the files (train, valid, test).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.data.layout import by_stem, optional

NAME = "recbole"
DESCRIPTION = ("RecBole atomic files (<name>.inter, or <name>.train|test[|valid].inter, "
               "+ <name>.item [+ <name>.user])")
TYPES = ("token", "token_seq", "float", "float_seq")
_TITLES = ("title", "movie_title", "item_name", "name")
_TEXTS = ("text", "description", "desc")
_CATEGORIES = ("categories", "genre", "genres", "class")

logger = logging.getLogger(__name__)


def _split_files(directory: Path, stem: str) -> dict[str, Path]:
    """The benchmark files of ``stem`` by split label; empty unless train and test exist."""
    files = {label: directory / f"{stem}.{label}.inter" for label in S.SPLIT_LABELS}
    found = {label: path for label, path in files.items() if path.is_file()}
    return found if {"train", "test"} <= set(found) else {}


def _stems(directory: Path) -> list[str]:
    names = {p.name.removesuffix(".inter") for p in directory.glob("*.inter")}
    names |= {name.removesuffix(".train") for name in names if name.endswith(".train")
              and _split_files(directory, name.removesuffix(".train"))}
    return sorted(name for name in names if (directory / f"{name}.item").is_file())


def read(directory: Path, stem: str) -> Dataset:
    """Read the atomic files ``stem.*`` into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
        stem: the files' name (``<stem>.inter`` or its benchmark files, ...), also the
            dataset's.
    """
    split = _split_files(directory, stem)
    if split and (directory / f"{stem}.inter").is_file():
        logger.info("%s: reading the benchmark files %s; %s.inter is ignored", directory,
                    ", ".join(p.name for p in split.values()), stem)
    parts: list[tuple[str | None, Path]] = [*split.items()] or [(None, directory / f"{stem}.inter")]
    return Dataset(name=stem, interactions=_interactions(parts),
                   items=_items(directory / f"{stem}.item"),
                   users=optional(directory / f"{stem}.user", _users))


LAYOUT = by_stem(NAME, DESCRIPTION, _stems, read)


def read_atomic(path: Path) -> tuple[pl.DataFrame, dict[str, str]]:
    """Read an atomic file; return the frame with plain column names and name -> type.

    Args:
        path: a ``.inter``/``.item``/``.user`` file.

    Raises:
        DataError: a header field has no type or an unknown one.
    """
    raw = P.read_table(path, "\t", quote=None)
    types, names = {}, {}
    for column in raw.columns:
        if column in (P.ROW, P.ENCODING_ERROR):
            continue
        name, _, kind = column.rpartition(":")
        if not name or kind not in TYPES:
            raise DataError(f"{path}: header field '{column}' is not name:type "
                            f"(type one of {', '.join(TYPES)})")
        names[column], types[name] = name, kind
    return raw.rename(names), types


def _interactions(parts: Sequence[tuple[str | None, Path]]) -> pl.DataFrame:
    """Canonical interactions of (split label or None, ``.inter`` file) pairs, in order."""
    frames, offset = [], 0
    for label, path in parts:
        raw, _ = read_atomic(path)
        P.require(raw, path, S.INTERACTIONS_REQUIRED)
        columns = {S.USER_ID: P.as_text(S.USER_ID), S.ITEM_ID: P.as_text(S.ITEM_ID)}
        columns[S.TS] = (P.as_timestamp(raw, "timestamp", S.TS) if "timestamp" in raw.columns
                         else P.synthetic_timestamps(offset))
        if S.RATING in raw.columns:
            columns[S.RATING] = P.as_float(raw, S.RATING, S.RATING)
        if label is not None:
            columns[S.SPLIT] = P.Parsed(pl.lit(label))
        frames.append(P.assemble(raw, columns, S.INTERACTIONS_SCHEMA))
        offset += raw.select(pl.col(P.ROW).max()).item() or 0
    return pl.concat(frames)


def _items(path: Path) -> pl.DataFrame:
    raw, types = read_atomic(path)
    title = P.first_present(raw, *_TITLES)
    P.require(raw, path, (S.ITEM_ID, title or S.TITLE))
    columns = {S.ITEM_ID: P.as_text(S.ITEM_ID), S.TITLE: P.as_text(title or S.TITLE)}
    text = P.first_present(raw, *_TEXTS)
    if text:
        columns[S.TEXT] = P.as_text(text)
    cats = P.first_present(raw, *_CATEGORIES)
    if cats:
        separator = " " if types[cats].endswith("_seq") else "\x00"
        columns[S.CATEGORIES] = P.as_categories(raw, cats, separator=separator)
    return P.assemble(raw, columns, S.ITEMS_SCHEMA)


def _users(path: Path) -> pl.DataFrame:
    raw, _ = read_atomic(path)
    P.require(raw, path, (S.USER_ID,))
    names = [c for c in raw.columns if c not in (P.ROW, P.ENCODING_ERROR)]
    return raw.select(*(P.as_text(c).value.alias(c) for c in names), pl.col(P.ROW),
                      pl.lit(None, dtype=pl.String).alias(P.PARSE_ERROR))
