"""Merge an increment into a snapshot's tables: per key, the increment's row wins."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.keys import (
    DUPLICATE,
    INTERACTION_KEYS,
    ITEM_KEYS,
    SUPERSEDED,
    USER_KEYS,
    losing_rows,
)


@dataclass(frozen=True)
class Merge:
    """The merged tables and what the increment changed.

    Args:
        dataset: the snapshot's tables with the increment applied, one row per key.
        duplicates: table -> rows dropped as exact copies of a kept row (an increment row
            the snapshot already held counts once).
        superseded: table -> the rows (canonical columns) that lost to a later row of their
            key with other values: the snapshot's rows the increment replaced.
    """

    dataset: Dataset
    duplicates: dict[str, int]
    superseded: dict[str, pl.DataFrame]


def _apply(base: pl.DataFrame, delta: pl.DataFrame,
           keys: tuple[str, ...]) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    rows = pl.concat([base, delta])
    reasons = losing_rows(rows, keys)
    return (rows.filter(reasons.is_null()), int((reasons == DUPLICATE).sum()),
            rows.filter(reasons == SUPERSEDED))


def _new_users(base: pl.DataFrame, delta: pl.DataFrame) -> pl.DataFrame:
    unique = delta.unique(list(USER_KEYS), keep="first", maintain_order=True)
    return unique.join(base.select(USER_KEYS), on=list(USER_KEYS), how="anti", nulls_equal=True,
                       maintain_order="left")


def merge(base: Dataset, delta: Dataset) -> Merge:
    """Apply ``delta`` to ``base`` with the rule of ``recsys_core.data.keys``: the later wins.

    Interactions are keyed by (``user_id``, ``item_id``, ``ts``) and items by ``item_id``; an
    increment row with the key of a snapshot row replaces it (``superseded``) unless the two
    are equal (``duplicates``). Users (attributes only, no quarantine table) keep the
    snapshot's row: the increment adds new users only.

    Args:
        base: the snapshot's canonical tables.
        delta: the increment's clean canonical tables (extra columns are ignored).
    """
    inter, n_inter, old_inter = _apply(
        base.interactions, S.conform(delta.interactions, S.INTERACTIONS_SCHEMA),
        INTERACTION_KEYS)
    items, n_items, old_items = _apply(base.items, S.conform(delta.items, S.ITEMS_SCHEMA),
                                       ITEM_KEYS)
    users = base.users
    if delta.users is not None:
        users = delta.users if users is None else pl.concat(
            [users, _new_users(users, delta.users)], how="diagonal_relaxed")
    return Merge(Dataset(base.name, inter, items, users),
                 {"interactions": n_inter, "items": n_items},
                 {"interactions": old_inter, "items": old_items})
