"""Snapshot ids: an order-insensitive content hash of a dataset's clean tables."""

from __future__ import annotations

import hashlib

import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset

_FIELD = "\x1f"
_NULL = "\x00"


def serialize_rows(frame: pl.DataFrame) -> pl.Series:
    """One canonical text per row (lists joined, timestamps as epoch microseconds)."""
    parts = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List):
            col = col.list.join("\x1e")
        elif isinstance(dtype, pl.Datetime):
            col = col.dt.epoch("us")
        parts.append(col.cast(pl.String).fill_null(_NULL))
    return frame.select(pl.concat_str(parts, separator=_FIELD).alias("row")).to_series()


def canonical_order(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` sorted by its serialized rows: the order the warehouse stores and returns."""
    return frame.with_columns(serialize_rows(frame).alias("__key")).sort("__key").drop("__key")


def snapshot_id(dataset: Dataset) -> str:
    """Hash the sorted, serialized canonical tables (first 16 hex digits of a SHA-256).

    Row order and the dataset name do not change the id; any value does.

    Args:
        dataset: a clean dataset (canonical columns; ``users`` optional).
    """
    digest = hashlib.sha256()
    tables = {"interactions": S.conform(dataset.interactions, S.INTERACTIONS_SCHEMA),
              "items": S.conform(dataset.items, S.ITEMS_SCHEMA)}
    if dataset.users is not None:
        tables["users"] = dataset.users.select(sorted(dataset.users.columns))
    for name, frame in tables.items():
        digest.update(f"{name}:{','.join(frame.columns)}\n".encode())
        digest.update("\n".join(serialize_rows(frame).sort().to_list()).encode())
        digest.update(b"\n\x02")
    return digest.hexdigest()[:16]
