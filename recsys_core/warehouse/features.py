"""Feature SQL over a warehouse snapshot: training weights, item documents, ID maps, counts.

Weight rule (one number per interaction, what CF models sum per user-item pair), the product of:

- the base: with a ``rating``, ``rating / max(rating)`` over the snapshot, so the top rating
  weighs like one plain event and low ratings weigh less; otherwise the stored ``weight``
  (1.0 for a plain event, the play count or explicit weight when the source had one), scaled
  sublinearly: ``1 + ln(w)`` for ``w >= 1`` (tf-style, so counts do not swamp), ``w`` below 1;
- the event's factor from ``FeatureConfig.event_weights`` (1.0 for events not listed);
- with ``FeatureConfig.half_life_days``, a time decay ``0.5 ** (age / half_life)``, the age
  measured back from the snapshot's latest timestamp (so features do not depend on today).

Item ``document``: ``title``, then categories joined by ``", "``, then ``text``, joined by
``". "``, skipping missing parts. Every value reaches SQL as a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.data import schema as S
from recsys_core.data.vocab import Vocabulary
from recsys_core.warehouse.store import Warehouse

DOCUMENT = "document"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"

_WEIGHTED = """
WITH src AS (
    SELECT row_idx, user_id, item_id, ts, event, rating, weight, split,
           MAX(rating) OVER () AS max_rating, MAX(ts) OVER () AS max_ts
    FROM clean_interactions WHERE snapshot_id = $snapshot_id
), weighted AS (
    SELECT row_idx, user_id, item_id, ts, event, rating, split,
        COALESCE(CASE
            WHEN rating IS NOT NULL THEN rating / NULLIF(max_rating, 0)
            WHEN weight >= 1 THEN 1 + LN(weight)
            ELSE weight END, 1.0)
        * COALESCE(LIST_EXTRACT(CAST($event_weights AS DOUBLE[]),
                                LIST_POSITION(CAST($events AS VARCHAR[]), event)), 1.0)
        * COALESCE(POW(0.5, (EPOCH(max_ts) - EPOCH(ts)) / CAST($half_life_s AS DOUBLE)), 1.0)
        AS weight
    FROM src
)
"""
_INTERACTIONS_SQL = _WEIGHTED + """
SELECT user_id, item_id, ts, event, rating, weight, split FROM weighted ORDER BY row_idx
"""
_USER_STATS_SQL = _WEIGHTED + """
SELECT user_id, COUNT(*) AS n_interactions, COUNT(DISTINCT item_id) AS n_items,
       SUM(weight) AS weight_sum, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM weighted GROUP BY user_id
"""
_ITEM_STATS_SQL = _WEIGHTED + """
SELECT i.item_id, COUNT(w.user_id) AS n_interactions, COUNT(DISTINCT w.user_id) AS n_users,
       COALESCE(SUM(w.weight), 0.0) AS weight_sum
FROM clean_items AS i LEFT JOIN weighted AS w ON w.item_id = i.item_id
WHERE i.snapshot_id = $snapshot_id
GROUP BY i.item_id, i.row_idx ORDER BY i.row_idx
"""
_DOCUMENT_SQL = "CONCAT_WS('. ', title, NULLIF(ARRAY_TO_STRING(categories, ', '), ''), text)"
_ITEMS_SQL = f"""
SELECT item_id, title, text, categories, {_DOCUMENT_SQL} AS document
FROM clean_items WHERE snapshot_id = ? ORDER BY row_idx
"""


class FeatureConfig(BaseModel):
    """How interactions are weighted.

    Args:
        event_weights: event -> factor on the interaction's weight (unlisted events: 1.0),
            e.g. ``{"view": 1, "cart": 2, "purchase": 3}``. Empty by default: a source whose
            event follows the item kind (the synthetic data) would otherwise favour kinds.
        half_life_days: time-decay half-life in days; ``None`` turns decay off.
    """

    model_config = ConfigDict(frozen=True)

    event_weights: dict[str, float] = Field(default_factory=dict)
    half_life_days: float | None = Field(default=None, gt=0)


@dataclass(frozen=True)
class Features:
    """Training inputs of one snapshot.

    Args:
        snapshot_id: the warehouse snapshot they were built from.
        interactions: canonical interactions with the training ``weight`` (see module doc)
            and the source's ``split`` label, if any (for the ``given`` protocol).
        items: canonical items plus ``document`` (the text to embed), in ``item_vocab`` order.
        user_vocab: every user with interactions, sorted by ID.
        item_vocab: every item in the items table, in ``items`` order.
        user_stats: per user, in ``user_vocab`` order: ``user_id``, ``user_index``,
            ``n_interactions``, ``n_items`` (distinct), ``weight_sum``, ``first_ts``,
            ``last_ts``.
        item_stats: per item, in ``item_vocab`` order: ``item_id``, ``item_index``,
            ``n_interactions`` (popularity), ``n_users`` (distinct), ``weight_sum``.
    """

    snapshot_id: str
    interactions: pl.DataFrame
    items: pl.DataFrame
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    user_stats: pl.DataFrame
    item_stats: pl.DataFrame


def build_features(warehouse: Warehouse, snapshot_id: str,
                   config: FeatureConfig | None = None) -> Features:
    """Compute weights, item documents, ID maps and counts for ``snapshot_id``.

    Args:
        warehouse: the warehouse holding the snapshot.
        snapshot_id: a snapshot id returned by ``Warehouse.load`` or ``Warehouse.append``.
        config: the weighting; default ``FeatureConfig()``.

    Raises:
        DataError: ``snapshot_id`` is not a snapshot of ``warehouse``.
    """
    config = config or FeatureConfig()
    params = {
        "snapshot_id": snapshot_id,
        "events": list(config.event_weights),
        "event_weights": [float(w) for w in config.event_weights.values()],
        "half_life_s": None if config.half_life_days is None else config.half_life_days * 86400,
    }
    interactions, items, user_stats, item_stats = warehouse.queries(
        [(_INTERACTIONS_SQL, params), (_ITEMS_SQL, [snapshot_id]), (_USER_STATS_SQL, params),
         (_ITEM_STATS_SQL, params)], snapshot=snapshot_id)
    interactions = S.conform(interactions, S.INTERACTIONS_SCHEMA)
    items = S.conform(items, S.ITEMS_SCHEMA).with_columns(items[DOCUMENT].cast(pl.String))
    user_stats = (user_stats.sort(S.USER_ID).with_row_index(USER_INDEX)
                  .select(S.USER_ID, USER_INDEX, pl.exclude(S.USER_ID, USER_INDEX)))
    item_stats = (item_stats.with_row_index(ITEM_INDEX)
                  .select(S.ITEM_ID, ITEM_INDEX, pl.exclude(S.ITEM_ID, ITEM_INDEX)))
    return Features(snapshot_id, interactions, items,
                    Vocabulary(user_stats[S.USER_ID].to_list()),
                    Vocabulary(items[S.ITEM_ID].to_list()), user_stats, item_stats)


def item_documents(warehouse: Warehouse) -> list[str]:
    """The distinct item ``document`` of every snapshot (what the embedding stage embeds).

    Args:
        warehouse: the warehouse.
    """
    frame = warehouse.query(f"SELECT DISTINCT COALESCE({_DOCUMENT_SQL}, '') AS document "
                            "FROM clean_items")
    return frame[DOCUMENT].to_list()
