"""Table keys and the one rule for rows that share a key: the last row of a key wins.

The rule applies twice, the same way: among one load's valid rows (``data_checks``) and
between a snapshot and the increment appended to it (``warehouse.increments``, the increment
coming after the snapshot). Of the rows of one key, the last is kept; an earlier row equal to it
in every compared column is a ``DUPLICATE`` (a copy: nothing is lost by dropping it), one that
differs is ``SUPERSEDED`` (an older version of the row). Both are recorded with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from recsys_core.data import schema as S

INTERACTION_KEYS = (S.USER_ID, S.ITEM_ID, S.TS)
ITEM_KEYS = (S.ITEM_ID,)
USER_KEYS = (S.USER_ID,)
DUPLICATE = "duplicate"
SUPERSEDED = "superseded"

_POSITION = "__position"


def losing_rows(frame: pl.DataFrame, keys: Sequence[str]) -> pl.Series:
    """Label the rows that lose to a later row of their key; null for the rows kept.

    Args:
        frame: rows oldest first; every column is compared (pass only the table's
            canonical columns, never a source row number).
        keys: the key columns (null key values compare equal to each other).

    Returns:
        A String series named ``reason``, aligned with ``frame``: null (kept), ``DUPLICATE``
        or ``SUPERSEDED``. Exactly one row per distinct key is null.
    """
    position = pl.col(_POSITION)
    last_of_key = position.max().over(keys)
    last_of_copy = position.max().over(frame.columns)
    return frame.with_row_index(_POSITION).select(
        pl.when(position == last_of_key).then(pl.lit(None, dtype=pl.String))
        .when(last_of_copy == last_of_key).then(pl.lit(DUPLICATE))
        .otherwise(pl.lit(SUPERSEDED)).alias("reason")).to_series()
