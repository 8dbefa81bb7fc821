"""Canonical table schemas: column names and Polars dtypes, in one place."""

from __future__ import annotations

import polars as pl

USER_ID = "user_id"
ITEM_ID = "item_id"
TS = "ts"
EVENT = "event"
RATING = "rating"
WEIGHT = "weight"
TITLE = "title"
TEXT = "text"
CATEGORIES = "categories"
SPLIT = "split"
SPLIT_LABELS = ("train", "valid", "test")
"""The values of ``split``: the part of a published split a row belongs to (``valid`` optional;
null when the source gives no split). Kept as data through the warehouse; only the ``given``
protocol reads it (``evaluation.splits.given``)."""

INTERACTIONS_SCHEMA: dict[str, pl.DataType] = {
    USER_ID: pl.String(),
    ITEM_ID: pl.String(),
    TS: pl.Datetime("us", "UTC"),
    EVENT: pl.String(),
    RATING: pl.Float64(),
    WEIGHT: pl.Float64(),
    SPLIT: pl.String(),
}
ITEMS_SCHEMA: dict[str, pl.DataType] = {
    ITEM_ID: pl.String(),
    TITLE: pl.String(),
    TEXT: pl.String(),
    CATEGORIES: pl.List(pl.String()),
}
INTERACTIONS_REQUIRED = (USER_ID, ITEM_ID)
ITEMS_REQUIRED = (ITEM_ID, TITLE)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Return ``frame`` with exactly the schema's columns, in order, cast to their dtypes.

    Missing optional columns are added as nulls (``weight`` defaults to 1.0).

    Args:
        frame: a frame holding at least the required columns.
        schema: ``INTERACTIONS_SCHEMA`` or ``ITEMS_SCHEMA``.
    """
    columns = []
    for name, dtype in schema.items():
        if name in frame.columns:
            columns.append(pl.col(name).cast(dtype))
        elif name == WEIGHT:
            columns.append(pl.lit(1.0, dtype=dtype).alias(name))
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(columns)
