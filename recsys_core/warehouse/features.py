"""Feature SQL over a warehouse snapshot: training weights, item documents, vocabularies.

Weight rule (one number per interaction, what CF models sum per user-item pair):

- a row with a ``rating``: ``rating / max(rating)`` over the snapshot, so the top rating
  weighs like one plain event and low ratings weigh less;
- otherwise the stored ``weight`` (1.0 for a plain event, the play count or explicit weight
  when the source had one), scaled sublinearly: ``1 + ln(w)`` for ``w >= 1`` (tf-style, so
  counts do not swamp), ``w`` itself below 1.

Item ``document``: ``title``, then categories joined by ``", "``, then ``text``, joined by
``". "``, skipping missing parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.vocab import Vocabulary
from recsys_core.warehouse.store import Warehouse

DOCUMENT = "document"

_INTERACTIONS_SQL = """
SELECT user_id, item_id, ts, event, rating,
       COALESCE(CASE
           WHEN rating IS NOT NULL THEN rating / NULLIF(MAX(rating) OVER (), 0)
           WHEN weight >= 1 THEN 1 + LN(weight)
           ELSE weight END, 1.0) AS weight
FROM clean_interactions WHERE snapshot_id = ? ORDER BY row_idx
"""
_ITEMS_SQL = """
SELECT item_id, title, text, categories,
       CONCAT_WS('. ', title, NULLIF(ARRAY_TO_STRING(categories, ', '), ''), text) AS document
FROM clean_items WHERE snapshot_id = ? ORDER BY row_idx
"""


@dataclass(frozen=True)
class Features:
    """Training inputs of one snapshot.

    Args:
        snapshot_id: the warehouse snapshot they were built from.
        interactions: canonical interactions with the training ``weight`` (see module doc).
        items: canonical items plus ``document`` (the text to embed), in ``item_vocab`` order.
        user_vocab: every user with interactions, sorted by ID.
        item_vocab: every item in the items table, in ``items`` order.
    """

    snapshot_id: str
    interactions: pl.DataFrame
    items: pl.DataFrame
    user_vocab: Vocabulary
    item_vocab: Vocabulary


def build_features(warehouse: Warehouse, snapshot_id: str) -> Features:
    """Compute weights, item documents and vocabularies for ``snapshot_id``.

    Args:
        warehouse: the warehouse holding the snapshot.
        snapshot_id: a snapshot id returned by ``Warehouse.load``.
    """
    warehouse.items(snapshot_id)  # raises DataError for an unknown snapshot
    interactions = S.conform(warehouse.query(_INTERACTIONS_SQL, [snapshot_id]),
                             S.INTERACTIONS_SCHEMA)
    items = warehouse.query(_ITEMS_SQL, [snapshot_id])
    items = S.conform(items, S.ITEMS_SCHEMA).with_columns(items[DOCUMENT].cast(pl.String))
    users = interactions[S.USER_ID].unique().sort()
    return Features(snapshot_id, interactions, items, Vocabulary(users.to_list()),
                    Vocabulary(items[S.ITEM_ID].to_list()))
