"""Expectation suites as code, one function per canonical table."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

import great_expectations.expectations as gxe
import pandas as pd

from recsys_core.data import schema as S
from recsys_core.data.parse import PARSE_ERROR

ID_MAX_LENGTH = 256
TITLE_MAX_LENGTH = 1_000
TEXT_MAX_LENGTH = 100_000
EVENT_MAX_LENGTH = 64
RATING_RANGE = (0.0, 10.0)
MAX_ROWS = 100_000_000
ROW_BOUNDS: tuple[int, int | None] = (1, MAX_ROWS)
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
KNOWN_ITEM = "_item_known"
"""Helper column: whether a row's ``item_id`` is a valid item (``check_interactions`` adds it;
a boolean column checks far faster than ``item_id`` against thousands of IDs)."""
REFERENCE_LABEL = f"expect_column_values_to_be_in_set({S.ITEM_ID})"


def labelled(expectation: gxe.Expectation, label: str) -> gxe.Expectation:
    """Return ``expectation`` with ``label`` as the reason it reports for bad rows.

    Args:
        expectation: any expectation.
        label: the reason text (by default ``type(column)``).
    """
    expectation.meta = {**(expectation.meta or {}), "label": label}
    return expectation


def interactions_suite(*, references: bool = False,
                       rating_range: tuple[float, float] = RATING_RANGE,
                       row_bounds: tuple[int, int | None] = ROW_BOUNDS,
                       event_values: Collection[str] | None = None,
                       has_parse_errors: bool = False,
                       has_split: bool = False,
                       has_order: bool = True,
                       now: datetime | None = None) -> list[gxe.Expectation]:
    """Build the row- and table-level expectations for the canonical interactions table.

    Key uniqueness is not here: it is judged among the rows that pass these (``keys_suite``).

    Args:
        references: check referential integrity: the frame carries ``KNOWN_ITEM`` (whether
            ``item_id`` is a valid item, see ``check_interactions``), which must be true.
        rating_range: inclusive bounds for non-null ratings.
        row_bounds: inclusive bounds on the row count (``None``: no upper bound).
        event_values: the allowed ``event`` values; ``None`` allows any short text.
        has_parse_errors: whether the frame carries the loader's ``_parse_error`` column.
        has_split: whether the frame carries a published split (``split`` labels): then every
            row needs one of ``SPLIT_LABELS``.
        has_order: whether the rows carry time: then every row needs a ``ts``. A source
            without any time or order (every ``ts`` null) passes without one.
        now: the latest acceptable timestamp (default: the current time).
    """
    latest = pd.Timestamp(now or datetime.now(UTC))
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=row_bounds[0], max_value=row_bounds[1]),
        gxe.ExpectColumnValuesToBeOfType(column=S.USER_ID, type_="str"),
        gxe.ExpectColumnValuesToBeOfType(column=S.ITEM_ID, type_="str"),
        gxe.ExpectColumnValuesToBeOfType(column=S.TS, type_="Timestamp"),
        gxe.ExpectColumnValuesToBeOfType(column=S.EVENT, type_="str"),
        gxe.ExpectColumnValuesToBeOfType(column=S.RATING, type_="float64"),
        gxe.ExpectColumnValuesToBeOfType(column=S.WEIGHT, type_="float64"),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c)
          for c in (S.USER_ID, S.ITEM_ID, *((S.TS,) if has_order else ()), S.WEIGHT)),
        *(gxe.ExpectColumnValueLengthsToBeBetween(column=c, min_value=1, max_value=ID_MAX_LENGTH)
          for c in (S.USER_ID, S.ITEM_ID)),
        gxe.ExpectColumnValueLengthsToBeBetween(column=S.EVENT, min_value=1,
                                                max_value=EVENT_MAX_LENGTH),
        gxe.ExpectColumnValuesToBeBetween(column=S.RATING, min_value=rating_range[0],
                                          max_value=rating_range[1]),
        gxe.ExpectColumnValuesToBeBetween(column=S.WEIGHT, min_value=0.0, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column=S.TS, min_value=EPOCH, max_value=latest),
    ]
    if event_values is not None:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=S.EVENT,
                                                            value_set=sorted(event_values)))
    if has_split:
        expectations += [
            gxe.ExpectColumnValuesToBeOfType(column=S.SPLIT, type_="str"),
            gxe.ExpectColumnValuesToNotBeNull(column=S.SPLIT),
            gxe.ExpectColumnValuesToBeInSet(column=S.SPLIT, value_set=list(S.SPLIT_LABELS)),
        ]
    if references:
        expectations.append(labelled(
            gxe.ExpectColumnValuesToBeInSet(column=KNOWN_ITEM, value_set=[True]),
            REFERENCE_LABEL))
    if has_parse_errors:
        expectations.append(gxe.ExpectColumnValuesToBeNull(column=PARSE_ERROR))
    return expectations


def items_suite(*, row_bounds: tuple[int, int | None] = ROW_BOUNDS,
                has_parse_errors: bool = False) -> list[gxe.Expectation]:
    """Build the row- and table-level expectations for the canonical items table.

    Key uniqueness is not here: it is judged among the rows that pass these (``keys_suite``).

    Args:
        row_bounds: inclusive bounds on the row count (``None``: no upper bound).
        has_parse_errors: whether the frame carries the loader's ``_parse_error`` column.
    """
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=row_bounds[0], max_value=row_bounds[1]),
        *(gxe.ExpectColumnValuesToBeOfType(column=c, type_="str")
          for c in (S.ITEM_ID, S.TITLE, S.TEXT)),
        gxe.ExpectColumnValuesToNotBeNull(column=S.ITEM_ID),
        gxe.ExpectColumnValuesToNotBeNull(column=S.TITLE),
        gxe.ExpectColumnValueLengthsToBeBetween(column=S.ITEM_ID, min_value=1,
                                                max_value=ID_MAX_LENGTH),
        gxe.ExpectColumnValueLengthsToBeBetween(column=S.TITLE, min_value=1,
                                                max_value=TITLE_MAX_LENGTH),
        gxe.ExpectColumnValueLengthsToBeBetween(column=S.TEXT, min_value=1,
                                                max_value=TEXT_MAX_LENGTH),
    ]
    if has_parse_errors:
        expectations.append(gxe.ExpectColumnValuesToBeNull(column=PARSE_ERROR))
    return expectations


def keys_suite(keys: Sequence[str]) -> list[gxe.Expectation]:
    """Build the uniqueness expectation on a table's key, for the rows that passed its suite.

    Args:
        keys: the key columns (``keys.INTERACTION_KEYS``, ``keys.ITEM_KEYS``).
    """
    if len(keys) == 1:
        return [gxe.ExpectColumnValuesToBeUnique(column=keys[0])]
    return [gxe.ExpectCompoundColumnsToBeUnique(column_list=list(keys))]
