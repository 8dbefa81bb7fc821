"""CheckReport: what one suite found in one table, free of Great Expectations types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from recsys_core.data.keys import DUPLICATE, SUPERSEDED

INDEX = "_index"
REASON = "reason"


@dataclass(frozen=True)
class Outcome:
    """One expectation's result.

    Args:
        expectation: label, e.g. ``expect_column_values_to_not_be_null(user_id)``.
        success: whether it passed.
        unexpected_count: rows blamed (0 for table-level expectations).
        row_level: whether failures point at rows (else the whole table fails).
        error: the exception message when the expectation could not run.
    """

    expectation: str
    success: bool
    unexpected_count: int
    row_level: bool
    error: str | None = None


@dataclass(frozen=True)
class CheckReport:
    """The outcome of one table's suite.

    Args:
        table: ``interactions`` or ``items``.
        row_count: rows checked.
        outcomes: one per expectation, in suite order.
        bad_rows: ``_index`` (0-based position in the checked frame, UInt32) and ``reason``
            (the failed expectations, ``"; "``-joined; or ``duplicate`` / ``superseded`` for
            a valid row that lost to a later row of its key), one row per row not kept.
        gx_result: the raw Great Expectations validation results as JSON-able dicts:
            ``rows`` (the table's suite) and ``keys`` (the key check on the valid rows).
    """

    table: str
    row_count: int
    outcomes: tuple[Outcome, ...]
    bad_rows: pl.DataFrame
    gx_result: dict[str, Any]

    @property
    def table_failures(self) -> list[Outcome]:
        """Failed expectations that condemn the whole table rather than rows."""
        return [o for o in self.outcomes if not o.success and not o.row_level]

    @property
    def duplicate_rows(self) -> int:
        """Valid rows dropped as exact copies of a later row of their key."""
        return int((self.bad_rows[REASON] == DUPLICATE).sum())

    @property
    def superseded_rows(self) -> int:
        """Valid rows replaced by a later row of their key with other values."""
        return int((self.bad_rows[REASON] == SUPERSEDED).sum())

    @property
    def invalid_rows(self) -> int:
        """Rows that failed a row-level expectation (the ones the bad-row threshold counts)."""
        return self.bad_rows.height - self.duplicate_rows - self.superseded_rows

    @property
    def success(self) -> bool:
        """Whether every expectation passed."""
        return all(o.success for o in self.outcomes)

    def summary(self) -> dict[str, Any]:
        """Return counts and failed expectations, JSON-able."""
        return {
            "rows": self.row_count,
            "bad_rows": self.bad_rows.height,
            "invalid_rows": self.invalid_rows,
            "duplicate_rows": self.duplicate_rows,
            "superseded_rows": self.superseded_rows,
            "success": self.success,
            "failed_expectations": {
                o.expectation: (o.error or o.unexpected_count)
                for o in self.outcomes if not o.success
            },
        }
