"""Pure table checks: a frame in, a ``CheckReport`` out; the caller decides what fails."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import polars as pl

from data_checks.engine import run_suite
from data_checks.report import CheckReport
from data_checks.suites import (
    KNOWN_ITEM,
    RATING_RANGE,
    ROW_BOUNDS,
    interactions_suite,
    items_suite,
)
from recsys_core.data import schema as S
from recsys_core.data.keys import INTERACTION_KEYS, ITEM_KEYS
from recsys_core.data.parse import PARSE_ERROR


def check_interactions(frame: pl.DataFrame, items: pl.DataFrame | None = None, *,
                       rating_range: tuple[float, float] = RATING_RANGE,
                       row_bounds: tuple[int, int | None] = ROW_BOUNDS,
                       event_values: Collection[str] | None = None,
                       known_item_ids: Collection[str] | None = None,
                       docs_dir: Path | None = None) -> CheckReport:
    """Check a canonical interactions frame (``_parse_error`` honoured when present).

    Rows that pass the row-level checks and share (``user_id``, ``item_id``, ``ts``): the last
    is kept, earlier copies are blamed as ``duplicate``, earlier other values as
    ``superseded`` (see ``recsys_core.data.keys``). When any row carries a ``split`` label
    (a published split), every row must carry one of ``train``, ``valid``, ``test``; when any
    row carries a ``ts``, every row must carry one (a source without time has none at all).

    Args:
        frame: canonical interactions, optionally with the loader's meta columns.
        items: the items frame whose ``item_id`` values interactions must reference;
            ``None`` (and no ``known_item_ids``) skips referential integrity.
        rating_range: inclusive bounds for non-null ratings.
        row_bounds: inclusive bounds on the row count (``None``: no upper bound).
        event_values: the allowed ``event`` values; ``None`` allows any short text.
        known_item_ids: further valid item IDs (an earlier snapshot's, for appends).
        docs_dir: when given, also render Great Expectations Data Docs there.
    """
    references = items is not None or known_item_ids is not None
    if references:
        item_ids = pl.Series(S.ITEM_ID, list(known_item_ids or ()), dtype=pl.String)
        if items is not None:
            item_ids = pl.concat([item_ids, items[S.ITEM_ID].cast(pl.String)])
        frame = frame.with_columns(
            pl.col(S.ITEM_ID).is_in(item_ids.drop_nulls().unique().implode()).alias(KNOWN_ITEM))
    has_split = S.SPLIT in frame.columns and frame[S.SPLIT].is_not_null().any()
    has_order = S.TS not in frame.columns or frame[S.TS].is_not_null().any()
    suite = interactions_suite(references=references, rating_range=rating_range,
                               row_bounds=row_bounds, event_values=event_values,
                               has_parse_errors=PARSE_ERROR in frame.columns,
                               has_split=has_split, has_order=has_order)
    return run_suite("interactions", frame, suite, INTERACTION_KEYS,
                     _fields(frame, S.INTERACTIONS_SCHEMA), docs_dir)


def check_items(frame: pl.DataFrame, *, row_bounds: tuple[int, int | None] = ROW_BOUNDS,
                docs_dir: Path | None = None) -> CheckReport:
    """Check a canonical items frame (``_parse_error`` honoured when present).

    Valid rows sharing an ``item_id``: the last is kept, the others are blamed as
    ``duplicate`` or ``superseded`` (see ``recsys_core.data.keys``).

    Args:
        frame: canonical items, optionally with the loader's meta columns.
        row_bounds: inclusive bounds on the row count (``None``: no upper bound).
        docs_dir: when given, also render Great Expectations Data Docs there.
    """
    suite = items_suite(row_bounds=row_bounds, has_parse_errors=PARSE_ERROR in frame.columns)
    return run_suite("items", frame, suite, ITEM_KEYS, _fields(frame, S.ITEMS_SCHEMA),
                     docs_dir)


def _fields(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> list[str]:
    return [c for c in schema if c in frame.columns]
