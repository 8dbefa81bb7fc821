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
from recsys_core.data.layout import by_files, optional

NAME = "movielens-1m"
DESCRIPTION = "MovieLens ml-1m (ratings.dat + movies.dat [+ users.dat], '::'-separated)"
_SEPARATOR = "::"
_ENCODING = "latin-1"
_USER_FIELDS = (S.USER_ID, "gender", "age", "occupation", "zip_code")
_NO_GENRES = "(no genres listed)"


def read(directory: Path) -> Dataset:
    """Read an ml-1m directory into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
    """
    return Dataset(name=directory.name, interactions=_ratings(directory / "ratings.dat"),
                   items=_movies(directory / "movies.dat"),
                   users=optional(directory / "users.dat", _users))


LAYOUT = by_files(NAME, DESCRIPTION, ("ratings.dat", "movies.dat"), read)


def _read(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    return P.read_table(path, _SEPARATOR, columns=columns, encoding=_ENCODING, quote=None)


def _ratings(path: Path) -> pl.DataFrame:
    raw = _read(path, ("user", "item", "rating", "timestamp"))
    return P.assemble_ratings(raw, "user", "item", "rating", "timestamp")


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
