"""Validate through a checkpoint that also renders Great Expectations Data Docs to a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context import AbstractDataContext


def docs_site(ctx: AbstractDataContext, docs_dir: Path) -> str:
    """Register (once) a filesystem Data Docs site rooted at ``docs_dir``; return its name.

    Args:
        ctx: the Great Expectations context.
        docs_dir: the folder the HTML goes to (``index.html`` at its root).
    """
    name = "recsys_" + hashlib.sha256(str(docs_dir).encode()).hexdigest()[:8]
    if name not in (ctx.variables.data_docs_sites or {}):
        ctx.add_data_docs_site(name, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    return name


def validate_with_docs(ctx: AbstractDataContext, batch: BatchDefinition,
                       suite: gx.ExpectationSuite, data: pd.DataFrame, docs_dir: Path,
                       result_format: dict[str, object]) -> ExpectationSuiteValidationResult:
    """Run ``suite`` on ``data`` via a checkpoint whose action updates the Data Docs site.

    Args:
        ctx: the Great Expectations context.
        batch: the whole-dataframe batch definition of the table.
        suite: the expectation suite (stored in ``ctx`` under its name, replacing any other).
        data: the pandas frame to validate.
        docs_dir: the Data Docs folder.
        result_format: Great Expectations result format.
    """
    site = docs_site(ctx, docs_dir)
    suite = ctx.suites.add_or_update(suite)
    definition = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite.name}_validation", data=batch, suite=suite))
    checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=f"{suite.name}_checkpoint", validation_definitions=[definition],
        actions=[UpdateDataDocsAction(name="data_docs", site_names=[site])],
        result_format=result_format))
    run = checkpoint.run(batch_parameters={"dataframe": data})
    return next(iter(run.run_results.values()))
