"""Run an expectation suite on a Polars frame with Great Expectations' pandas engine."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig

from data_checks.docs import validate_with_docs
from data_checks.report import INDEX, REASON, CheckReport, Outcome
from recsys_core.data.parse import PARSE_ERROR

_RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 0,
                  "exclude_unexpected_values": True, "return_unexpected_index_query": False}
_UNIQUENESS = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}


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
              docs_dir: Path | None = None) -> CheckReport:
    """Validate ``frame`` against ``expectations`` and blame rows by position.

    For uniqueness expectations the first occurrence of a key is valid and only later
    duplicates are blamed. Rows failing the ``_parse_error`` null check get the parse message.

    Args:
        table: the table name (``interactions``, ``items``).
        frame: the frame to check (canonical columns, optionally ``_parse_error``).
        expectations: the suite, as code.
        docs_dir: when given, validate through a checkpoint that renders Data Docs there.
    """
    suite = gx.ExpectationSuite(name=f"{table}_suite", expectations=list(expectations))
    data = frame.to_pandas()
    if docs_dir is None:
        batch = batch_definition(table).get_batch(batch_parameters={"dataframe": data})
        result = batch.validate(suite, result_format=_RESULT_FORMAT)
    else:
        result = validate_with_docs(context(), batch_definition(table), suite, data, docs_dir,
                                    _RESULT_FORMAT)
    outcomes, blamed = [], []
    for item in result.results:
        config = item.expectation_config
        label = (config.meta or {}).get("label") or _label(config.type, config.kwargs)
        indices = item.result.get("unexpected_index_list")
        error = _error(item.exception_info)
        if indices and config.type in _UNIQUENESS:
            indices = _later_duplicates(frame, config.kwargs, indices)
        outcomes.append(Outcome(label, bool(item.success) and error is None,
                                len(indices or ()), indices is not None, error))
        if indices:
            blamed.append(pl.DataFrame({INDEX: pl.Series(indices, dtype=pl.UInt32),
                                        REASON: label}).with_columns(
                pl.lit(config.kwargs.get("column") == PARSE_ERROR).alias("_detail")))
    return CheckReport(table, frame.height, tuple(outcomes), _reasons(frame, blamed),
                       result.to_json_dict())


def _label(kind: str, kwargs: dict[str, Any]) -> str:
    columns = kwargs.get("column") or ",".join(kwargs.get("column_list") or ())
    return f"{kind}({columns})" if columns else kind


def _error(info: dict[str, Any] | None) -> str | None:
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    return next((_error(v) for v in info.values() if isinstance(v, dict) and _error(v)), None)


def _later_duplicates(frame: pl.DataFrame, kwargs: dict[str, Any],
                      indices: list[int]) -> list[int]:
    columns = kwargs.get("column_list") or [kwargs["column"]]
    first = frame.select(pl.struct(columns).is_first_distinct())[:, 0]
    return [i for i in indices if not first[i]]


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
