"""Dataset: the canonical tables of one data source, in memory."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Dataset:
    """Canonical tables (see ``schema``) of one data source.

    Args:
        name: a short name for reports and MLflow tags (``synthetic``, ``ml-latest-small``).
        interactions: ``INTERACTIONS_SCHEMA`` columns.
        items: ``ITEMS_SCHEMA`` columns.
        users: optional ``user_id`` + attributes.
    """

    name: str
    interactions: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame | None = None
