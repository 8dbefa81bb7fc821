"""Run a table's suites on a Polars frame with Great Expectations' pandas engine."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl
from great_expectations.core import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from data_checks.docs import validate_with_docs
from data_checks.report import INDEX, REASON, CheckReport, Outcome
from data_checks.suites import keys_suite
from recsys_core.data.keys import losing_rows
from recsys_core.data.parse import PARSE_ERROR

_RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 0,
                  "exclude_unexpected_values": True, "return_unexpected_index_query": False}


@functools.cache
def context() -> AbstractDataContext:
    """Return the process-wide ephemeral Great Expectations context (progress bars off)."""
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def batch_definition(table: str) -> BatchDefinition:
    """Return the whole-dataframe batch definition for ``table`` in ``context()``."""
    ctx = context()
    name = f"recsys_{table}"
    if name not in ctx.data_sources.all():
        ctx.data_sources.add_pandas(name).add_dataframe_asset(table) \
            .add_batch_definition_whole_dataframe("whole")
    return ctx.data_sources.get(name).get_asset(table).get_batch_definition("whole")


def run_suite(table: str, frame: pl.DataFrame, expectations: Sequence[gxe.Expectation],
              keys: Sequence[str], fields: Sequence[str],
              docs_dir: Path | None = None) -> CheckReport:
    """Validate ``frame`` against ``expectations``, then its key among the rows that passed.

    Rows failing a row-level expectation are blamed by position; rows failing the
    ``_parse_error`` null check get the parse message. Only the other rows are checked for a
    unique key (``keys_suite``), so a bad row never knocks out a good one. Of the valid rows
    sharing a key the last is kept and the others are blamed as ``duplicate`` or
    ``superseded`` (``recsys_core.data.keys.losing_rows``).

    Args:
        table: the table name (``interactions``, ``items``).
        frame: the frame to check (canonical columns, optionally ``_parse_error``).
        expectations: the row- and table-level suite, as code.
        keys: the table's key columns.
        fields: the columns compared to tell a duplicate from a superseded row.
        docs_dir: when given, validate through checkpoints that render Data Docs there.
    """
    rows = _validate(f"{table}_suite", table, frame, expectations, docs_dir)
    outcomes, blamed = [], []
    for item in rows.results:
        outcome, indices = _outcome(item)
        outcomes.append(outcome)
        if indices:
            blamed.append(_blame(indices, outcome.expectation,
                                 _config(item).kwargs.get("column") == PARSE_ERROR))
    invalid = pl.concat([b[INDEX] for b in blamed]) if blamed else pl.Series(dtype=pl.UInt32)
    valid = pl.Series(INDEX, range(frame.height), dtype=pl.UInt32)
    valid = valid.filter(~valid.is_in(invalid.implode()))
    key_check = _validate(f"{table}_keys_suite", table, frame[valid], keys_suite(keys),
                          docs_dir)
    for item in key_check.results:
        outcome, indices = _outcome(item)
        if indices:
            flagged = valid.gather(sorted(indices))
            reasons = losing_rows(frame[flagged].select(fields), keys)
            losers = pl.DataFrame({INDEX: flagged, REASON: reasons}).drop_nulls(REASON)
            blamed.append(losers.with_columns(pl.lit(False).alias("_detail")))
            outcome = replace(outcome, unexpected_count=losers.height)
        outcomes.append(outcome)
    return CheckReport(table, frame.height, tuple(outcomes), _reasons(frame, blamed),
                       {"rows": rows.to_json_dict(), "keys": key_check.to_json_dict()})


def _validate(name: str, table: str, frame: pl.DataFrame,
              expectations: Sequence[gxe.Expectation],
              docs_dir: Path | None) -> ExpectationSuiteValidationResult:
    suite = gx.ExpectationSuite(name=name, expectations=list(expectations))
    data = frame.to_pandas()
    if docs_dir is None:
        batch = batch_definition(table).get_batch(batch_parameters={"dataframe": data})
        return batch.validate(suite, result_format=_RESULT_FORMAT)
    return validate_with_docs(context(), batch_definition(table), suite, data, docs_dir,
                              _RESULT_FORMAT)


def _config(item: ExpectationValidationResult) -> ExpectationConfiguration:
    """The expectation a result is of (GE sets it on every result of a suite run)."""
    config = item.expectation_config
    assert config is not None
    return config


def _outcome(item: ExpectationValidationResult) -> tuple[Outcome, list[int] | None]:
    config = _config(item)
    label = (config.meta or {}).get("label") or _label(config.type, config.kwargs)
    indices = item.result.get("unexpected_index_list")
    error = _error(item.exception_info)
    return Outcome(label, bool(item.success) and error is None, len(indices or ()),
                   indices is not None, error), indices


def _blame(indices: list[int], reason: str, detail: bool) -> pl.DataFrame:
    return pl.DataFrame({INDEX: pl.Series(indices, dtype=pl.UInt32), REASON: reason,
                         "_detail": detail})


def _label(kind: str, kwargs: dict[str, Any]) -> str:
    columns = kwargs.get("column") or ",".join(kwargs.get("column_list") or ())
    return f"{kind}({columns})" if columns else kind


def _error(info: dict[str, Any] | None) -> str | None:
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    return next((_error(v) for v in info.values() if isinstance(v, dict) and _error(v)), None)


def _reasons(frame: pl.DataFrame, blamed: list[pl.DataFrame]) -> pl.DataFrame:
    if not blamed:
        return pl.DataFrame(schema={INDEX: pl.UInt32, REASON: pl.String})
    rows = pl.concat(blamed)
    if PARSE_ERROR in frame.columns:
        rows = rows.with_columns(frame[PARSE_ERROR].gather(rows[INDEX]).alias("_message"))
        rows = rows.with_columns(
            pl.when(pl.col("_detail") & pl.col("_message").is_not_null())
            .then(pl.format("{}: {}", pl.col(REASON), pl.col("_message")))
            .otherwise(pl.col(REASON)).alias(REASON))
    return (rows.group_by(INDEX, maintain_order=True)
            .agg(pl.col(REASON).str.join("; ")).sort(INDEX))
