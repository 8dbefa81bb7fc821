"""Pure table checks: a frame in, a ``CheckReport`` out; the caller decides what fails."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from data_checks.engine import run_suite
from data_checks.report import CheckReport
from data_checks.suites import RATING_RANGE, interactions_suite, items_suite
from recsys_core.data import schema as S
from recsys_core.data.parse import PARSE_ERROR


def check_interactions(frame: pl.DataFrame, items: pl.DataFrame | None = None, *,
                       rating_range: tuple[float, float] = RATING_RANGE,
                       docs_dir: Path | None = None) -> CheckReport:
    """Check a canonical interactions frame (``_parse_error`` honoured when present).

    Args:
        frame: canonical interactions, optionally with the loader's meta columns.
        items: the items frame whose ``item_id`` values interactions must reference;
            ``None`` skips referential integrity.
        rating_range: inclusive bounds for non-null ratings.
        docs_dir: when given, also render Great Expectations Data Docs there.
    """
    item_ids = None if items is None else items[S.ITEM_ID].drop_nulls().unique().to_list()
    suite = interactions_suite(item_ids, rating_range=rating_range,
                               has_parse_errors=PARSE_ERROR in frame.columns)
    return run_suite("interactions", frame, suite, docs_dir)


def check_items(frame: pl.DataFrame, *, docs_dir: Path | None = None) -> CheckReport:
    """Check a canonical items frame (``_parse_error`` honoured when present).

    Args:
        frame: canonical items, optionally with the loader's meta columns.
        docs_dir: when given, also render Great Expectations Data Docs there.
    """
    suite = items_suite(has_parse_errors=PARSE_ERROR in frame.columns)
    return run_suite("items", frame, suite, docs_dir)
