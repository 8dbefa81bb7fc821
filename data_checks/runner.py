"""Validate a loaded dataset: split every table into clean rows and quarantined rows."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from data_checks.checks import check_interactions, check_items
from data_checks.report import INDEX, REASON, CheckReport
from data_checks.suites import RATING_RANGE, ROW_BOUNDS
from recsys_core.config import get_settings
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.data.parse import ROW, strip_meta

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationResult:
    """Clean data, quarantined rows and the verdict.

    Args:
        dataset: the clean dataset (canonical columns only, source order): every valid row,
            one per key (the last; see ``recsys_core.data.keys``).
        quarantine: table -> every other row: canonical columns, ``_row`` (source record
            number) and ``reason`` (the failed expectations, with parse messages; or
            ``duplicate`` / ``superseded`` for a valid row that lost to a later one).
        reports: table -> the suite's ``CheckReport``.
        threshold: the largest acceptable share of bad rows (failing a row-level check;
            duplicates and superseded rows are not bad) per table.
        data_docs: the Data Docs ``index.html`` when they were rendered, else ``None``.
    """

    dataset: Dataset
    quarantine: dict[str, pl.DataFrame]
    reports: dict[str, CheckReport]
    threshold: float
    data_docs: Path | None = None

    def _problems(self) -> list[str]:
        problems = []
        for table, report in self.reports.items():
            failures = ", ".join(o.expectation for o in report.table_failures)
            if failures:
                problems.append(f"{table}: table checks failed ({failures})")
            share = report.invalid_rows / max(report.row_count, 1)
            if share > self.threshold:
                problems.append(f"{table}: {share:.1%} of {report.row_count} rows bad "
                                f"(threshold {self.threshold:.1%})")
        return problems

    @property
    def success(self) -> bool:
        """Whether no table failed a table check or exceeded the bad-row threshold."""
        return not self._problems()

    @property
    def summary(self) -> dict[str, Any]:
        """Rows per table and failed expectations, JSON-able.

        Per table: ``rows_read`` = ``rows_valid`` (clean) + ``rows_quarantined``, of which
        ``rows_duplicate`` and ``rows_superseded`` lost to a later row of their key and the
        rest failed a check; ``bad_share`` is that rest over ``rows_read``.
        """
        tables = {}
        for table, report in self.reports.items():
            bad = report.bad_rows.height
            tables[table] = {
                "rows_read": report.row_count,
                "rows_valid": report.row_count - bad,
                "rows_quarantined": bad,
                "rows_duplicate": report.duplicate_rows,
                "rows_superseded": report.superseded_rows,
                "bad_share": report.invalid_rows / max(report.row_count, 1),
                "failed_expectations": report.summary()["failed_expectations"],
            }
        return {"dataset": self.dataset.name, "threshold": self.threshold,
                "success": self.success, "tables": tables}

    def raise_if_failed(self) -> None:
        """Raise ``DataError`` (one line) when the validation failed.

        Raises:
            DataError: a table failed a table check or has too many bad rows.
        """
        problems = self._problems()
        if problems:
            raise DataError(f"validation of {self.dataset.name} failed: " + "; ".join(problems))


def validate_dataset(dataset: Dataset, threshold: float, *,
                     rating_range: tuple[float, float] = RATING_RANGE,
                     row_bounds: Mapping[str, tuple[int, int | None]] | None = None,
                     event_values: Collection[str] | None = None,
                     known_item_ids: Collection[str] | None = None,
                     data_docs: bool = False) -> ValidationResult:
    """Check items, then interactions against the clean items, and split both.

    Args:
        dataset: a loaded dataset (canonical columns, optionally ``_row``/``_parse_error``).
        threshold: the largest acceptable share of bad rows per table (0..1).
        rating_range: inclusive bounds for non-null ratings.
        row_bounds: table -> inclusive row-count bounds (``None`` upper bound: unbounded);
            tables not named get ``ROW_BOUNDS`` (at least one row).
        event_values: the allowed ``event`` values; ``None`` allows any short text.
        known_item_ids: item IDs valid beyond the dataset's own clean items (those of the
            snapshot an increment is appended to, see ``Warehouse.append``).
        data_docs: also render Great Expectations Data Docs under
            ``Settings().data_docs_dir`` (slower: a checkpoint run per table).
    """
    bounds = {"interactions": ROW_BOUNDS, "items": ROW_BOUNDS, **(row_bounds or {})}
    docs_dir = get_settings().data_docs_dir if data_docs else None
    items_report = check_items(dataset.items, row_bounds=bounds["items"], docs_dir=docs_dir)
    clean_items, bad_items = _split(dataset.items, items_report)
    inter_report = check_interactions(dataset.interactions, clean_items,
                                      rating_range=rating_range,
                                      row_bounds=bounds["interactions"],
                                      event_values=event_values,
                                      known_item_ids=known_item_ids, docs_dir=docs_dir)
    clean_inter, bad_inter = _split(dataset.interactions, inter_report)
    clean = Dataset(name=dataset.name, interactions=strip_meta(clean_inter),
                    items=strip_meta(clean_items),
                    users=None if dataset.users is None else strip_meta(dataset.users))
    result = ValidationResult(clean, {"interactions": bad_inter, "items": bad_items},
                              {"interactions": inter_report, "items": items_report}, threshold,
                              None if docs_dir is None else docs_dir / "index.html")
    logger.info("validated %s: %s", dataset.name, result.summary["tables"])
    return result


def _split(frame: pl.DataFrame, report: CheckReport) -> tuple[pl.DataFrame, pl.DataFrame]:
    if ROW not in frame.columns:
        frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    indexed = frame.with_row_index(INDEX)
    bad = indexed.join(report.bad_rows, on=INDEX, how="inner", maintain_order="left")
    clean = indexed.join(report.bad_rows, on=INDEX, how="anti", maintain_order="left")
    quarantine = strip_meta(bad.drop(INDEX, REASON)).with_columns(bad[ROW], bad[REASON])
    return clean.drop(INDEX), quarantine
