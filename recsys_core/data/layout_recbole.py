"""RecBole atomic files: ``<name>.inter`` + ``<name>.item`` (+ ``<name>.user``).

Tab-separated with a typed header (``item_id:token``, ``rating:float``,
``timestamp:float``, ``title:token_seq``); the types are checked (``token``, ``token_seq``,
``float``, ``float_seq``) and dropped from the names. inter: ``user_id``, ``item_id`` and
optionally ``rating`` and ``timestamp`` (unix seconds; file order otherwise). item:
``item_id`` and a title (``title``, ``movie_title``, ``item_name`` or ``name``), optionally
text (``text``, ``description`` or ``desc``) and categories (``categories``, ``genre``,
``genres`` or ``class``; a ``token_seq`` is space-separated). user: ``user_id`` + attributes.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.data.layout import by_stem, optional

NAME = "recbole"
DESCRIPTION = "RecBole atomic files (<name>.inter + <name>.item [+ <name>.user])"
TYPES = ("token", "token_seq", "float", "float_seq")
_TITLES = ("title", "movie_title", "item_name", "name")
_TEXTS = ("text", "description", "desc")
_CATEGORIES = ("categories", "genre", "genres", "class")


def _stems(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.inter")
                  if (directory / f"{p.stem}.item").is_file())


def read(directory: Path, stem: str) -> Dataset:
    """Read the atomic files ``stem.*`` into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
        stem: the files' name (``<stem>.inter``, ...), also the dataset's.
    """
    return Dataset(name=stem, interactions=_interactions(directory / f"{stem}.inter"),
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


def _interactions(path: Path) -> pl.DataFrame:
    raw, _ = read_atomic(path)
    P.require(raw, path, S.INTERACTIONS_REQUIRED)
    columns = {S.USER_ID: P.as_text(S.USER_ID), S.ITEM_ID: P.as_text(S.ITEM_ID)}
    columns[S.TS] = (P.as_timestamp(raw, "timestamp", S.TS) if "timestamp" in raw.columns
                     else P.synthetic_timestamps())
    if S.RATING in raw.columns:
        columns[S.RATING] = P.as_float(raw, S.RATING, S.RATING)
    return P.assemble(raw, columns, S.INTERACTIONS_SCHEMA)


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
