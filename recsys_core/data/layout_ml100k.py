"""MovieLens ml-100k layout: ``u.data`` + ``u.item`` (+ ``u.genre``, ``u.user``).

u.data: tab-separated ``user item rating timestamp`` (unix seconds), no header.
u.item: ``|``-separated latin-1 ``movie id|title|release date|video release date|IMDb URL``
followed by 19 genre flags (``0``/``1``), no header; the genre names come from ``u.genre``
when present, else the documented list. u.user (optional): ``user id|age|gender|occupation|
zip code`` become user attributes.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.layout import by_files, optional

NAME = "movielens-100k"
DESCRIPTION = "MovieLens ml-100k (u.data + u.item [+ u.genre, u.user])"
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western")
_ENCODING = "latin-1"
_ITEM_FIELDS = ("movie_id", "title", "release_date", "video_release_date", "imdb_url")
_USER_FIELDS = (S.USER_ID, "age", "gender", "occupation", "zip_code")


def read(directory: Path) -> Dataset:
    """Read an ml-100k directory into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
    """
    return Dataset(name=directory.name, interactions=_ratings(directory / "u.data"),
                   items=_movies(directory / "u.item", _genres(directory / "u.genre")),
                   users=optional(directory / "u.user", _users))


LAYOUT = by_files(NAME, DESCRIPTION, ("u.data", "u.item"), read)


def _ratings(path: Path) -> pl.DataFrame:
    raw = P.read_table(path, "\t", columns=("user", "item", "rating", "timestamp"), quote=None)
    return P.assemble_ratings(raw, "user", "item", "rating", "timestamp")


def _genres(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return GENRES
    raw = P.read_table(path, "|", columns=("name", "index"), encoding=_ENCODING, quote=None)
    names = raw.select(P.as_text("name").value, P.as_text("index").value.cast(pl.Int64))
    return tuple(names.drop_nulls().sort("index")["name"].to_list())


def _movies(path: Path, genres: tuple[str, ...]) -> pl.DataFrame:
    flags = tuple(f"flag_{i}" for i in range(len(genres)))
    raw = P.read_table(path, "|", columns=(*_ITEM_FIELDS, *flags), encoding=_ENCODING,
                       quote=None)
    values = [pl.col(f).str.strip_chars() for f in flags]
    categories = pl.concat_list([pl.when(v == "1").then(pl.lit(g))
                                 for v, g in zip(values, genres, strict=True)])
    invalid = pl.any_horizontal([v.is_null() | ~v.is_in(["0", "1"]) for v in values])
    error = pl.when(invalid).then(pl.lit(f"{S.CATEGORIES}: genre flags must be 0 or 1"))
    return P.assemble(raw, {
        S.ITEM_ID: P.as_text("movie_id"),
        S.TITLE: P.as_text("title"),
        S.CATEGORIES: P.Parsed(categories.list.drop_nulls(), error),
    }, S.ITEMS_SCHEMA)


def _users(path: Path) -> pl.DataFrame:
    raw = P.read_table(path, "|", columns=_USER_FIELDS, encoding=_ENCODING, quote=None)
    return raw.select(*(P.as_text(c).value.alias(c) for c in _USER_FIELDS), pl.col(P.ROW),
                      pl.lit(None, dtype=pl.String).alias(P.PARSE_ERROR))
