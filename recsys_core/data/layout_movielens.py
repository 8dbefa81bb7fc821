"""MovieLens ml-latest layout: ``ratings.csv`` + ``movies.csv`` (+ ``tags.csv``).

ratings: ``userId,movieId,rating,timestamp`` (unix seconds). movies: ``movieId,title,genres``
with ``|``-separated genres (``(no genres listed)`` means none). Each movie's distinct tags, in
file order, become its ``text`` (joined by ``", "``); tags of unknown movies are logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.layout import by_files

NAME = "movielens-latest"
DESCRIPTION = "MovieLens ml-latest (ratings.csv + movies.csv [+ tags.csv])"
_NO_GENRES = "(no genres listed)"

logger = logging.getLogger(__name__)


def read(directory: Path) -> Dataset:
    """Read an ml-latest directory into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
    """
    return Dataset(name=directory.name, interactions=_ratings(directory / "ratings.csv"),
                   items=_movies(directory / "movies.csv", directory / "tags.csv"))


LAYOUT = by_files(NAME, DESCRIPTION, ("ratings.csv", "movies.csv"), read)


def _ratings(path: Path) -> pl.DataFrame:
    raw = P.read_table(path)
    P.require(raw, path, ("userId", "movieId", "rating", "timestamp"))
    return P.assemble_ratings(raw, "userId", "movieId", "rating", "timestamp")


def _movies(path: Path, tags_path: Path) -> pl.DataFrame:
    raw = P.read_table(path)
    P.require(raw, path, ("movieId", "title", "genres"))
    columns = {
        S.ITEM_ID: P.as_text("movieId"),
        S.TITLE: P.as_text("title"),
        S.CATEGORIES: P.as_categories(raw, "genres", ignore=(_NO_GENRES,)),
    }
    if tags_path.is_file():
        raw = raw.with_columns(P.as_text("movieId").value)
        tags = _tag_text(tags_path)
        unknown = tags.filter(~pl.col("movieId").is_in(raw["movieId"].implode()))
        if unknown.height:
            logger.warning("%s: tags of %d movies not in %s are not used",
                           tags_path, unknown.height, path.name)
        raw = raw.join(tags, on="movieId", how="left", maintain_order="left")
        columns[S.TEXT] = P.as_text(S.TEXT)
    return P.assemble(raw, columns, S.ITEMS_SCHEMA)


def _tag_text(path: Path) -> pl.DataFrame:
    raw = P.read_table(path)
    P.require(raw, path, ("movieId", "tag"))
    tags = raw.select(P.as_text("movieId").value, P.as_text("tag").value).drop_nulls()
    return tags.group_by("movieId", maintain_order=True).agg(
        pl.col("tag").unique(maintain_order=True).str.join(", ").alias(S.TEXT))
