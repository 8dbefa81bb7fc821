"""MovieLens ml-1m layout (also ml-10m): ``ratings.dat`` + ``movies.dat`` (+ ``users.dat``).

Every file is ``::``-separated latin-1 text without a header. ratings:
``UserID::MovieID::Rating::Timestamp`` (unix seconds); movies: ``MovieID::Title::Genres``
(``|``-separated genres); users (optional): ``UserID::Gender::Age::Occupation::Zip-code``
become user attributes.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset

NAME = "movielens-1m"
DESCRIPTION = "MovieLens ml-1m (ratings.dat + movies.dat [+ users.dat], '::'-separated)"
_SEPARATOR = "::"
_ENCODING = "latin-1"
_USER_FIELDS = (S.USER_ID, "gender", "age", "occupation", "zip_code")
_NO_GENRES = "(no genres listed)"


def detect(directory: Path) -> bool:
    """Whether ``directory`` holds ml-1m ``ratings.dat`` and ``movies.dat``."""
    return (directory / "ratings.dat").is_file() and (directory / "movies.dat").is_file()


def load(directory: Path) -> Dataset:
    """Read an ml-1m directory into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
    """
    users = directory / "users.dat"
    return Dataset(name=directory.name, interactions=_ratings(directory / "ratings.dat"),
                   items=_movies(directory / "movies.dat"),
                   users=_users(users) if users.is_file() else None)


def _read(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    return P.read_table(path, _SEPARATOR, columns=columns, encoding=_ENCODING, quote=None)


def _ratings(path: Path) -> pl.DataFrame:
    raw = _read(path, ("user", "item", "rating", "timestamp"))
    return P.assemble(raw, {
        S.USER_ID: P.as_text("user"),
        S.ITEM_ID: P.as_text("item"),
        S.TS: P.as_timestamp(raw, "timestamp", S.TS),
        S.RATING: P.as_float(raw, "rating", S.RATING),
    }, S.INTERACTIONS_SCHEMA)


def _movies(path: Path) -> pl.DataFrame:
    raw = _read(path, ("movie", "title", "genres"))
    return P.assemble(raw, {
        S.ITEM_ID: P.as_text("movie"),
        S.TITLE: P.as_text("title"),
        S.CATEGORIES: P.as_categories(raw, "genres", ignore=(_NO_GENRES,)),
    }, S.ITEMS_SCHEMA)


def _users(path: Path) -> pl.DataFrame:
    raw = _read(path, _USER_FIELDS)
    return raw.select(*(P.as_text(c).value.alias(c) for c in _USER_FIELDS), pl.col(P.ROW),
                      pl.lit(None, dtype=pl.String).alias(P.PARSE_ERROR))
