"""Merge an increment into a snapshot's tables, deduplicating on each table's keys."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset

INTERACTION_KEYS = (S.USER_ID, S.ITEM_ID, S.TS)
ITEM_KEYS = (S.ITEM_ID,)


@dataclass(frozen=True)
class Merge:
    """The merged tables and what the increment added.

    Args:
        dataset: the base tables followed by the increment's new rows.
        added_interactions: increment interactions whose key was new.
        added_items: increment items whose ``item_id`` was new.
        duplicate_interactions: increment interactions dropped as duplicates.
        duplicate_items: increment items dropped as duplicates.
    """

    dataset: Dataset
    added_interactions: int
    added_items: int
    duplicate_interactions: int
    duplicate_items: int


def _new_rows(base: pl.DataFrame, delta: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    unique = delta.unique(list(keys), keep="first", maintain_order=True)
    return unique.join(base.select(keys), on=list(keys), how="anti", nulls_equal=True,
                       maintain_order="left")


def merge(base: Dataset, delta: Dataset) -> Merge:
    """Append ``delta``'s rows whose keys ``base`` lacks; the first row of a key wins.

    Interactions are keyed by (``user_id``, ``item_id``, ``ts``), items by ``item_id`` and
    users by ``user_id``; so an increment cannot rewrite an existing item or user.

    Args:
        base: the snapshot's canonical tables.
        delta: the increment's clean canonical tables (extra columns are ignored).
    """
    inter = S.conform(delta.interactions, S.INTERACTIONS_SCHEMA)
    items = S.conform(delta.items, S.ITEMS_SCHEMA)
    new_inter = _new_rows(base.interactions, inter, INTERACTION_KEYS)
    new_items = _new_rows(base.items, items, ITEM_KEYS)
    users = base.users
    if delta.users is not None:
        users = delta.users if users is None else pl.concat(
            [users, _new_rows(users, delta.users, (S.USER_ID,))], how="diagonal_relaxed")
    merged = Dataset(base.name, pl.concat([base.interactions, new_inter]),
                     pl.concat([base.items, new_items]), users)
    return Merge(merged, new_inter.height, new_items.height,
                 inter.height - new_inter.height, items.height - new_items.height)
