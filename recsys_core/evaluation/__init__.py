"""Evaluation: splits, ranking metrics, the full-ranking evaluator, significance, report."""

from recsys_core.evaluation.evaluator import SEGMENTS, Evaluation, evaluate
from recsys_core.evaluation.metrics import metric_keys
from recsys_core.evaluation.report import REPORT_KEYS, build_report, metrics_table, render_text
from recsys_core.evaluation.significance import PairedTest, paired_test
from recsys_core.evaluation.splits import (
    PROTOCOLS,
    Split,
    cold_items,
    deduplicate,
    leave_last,
    split,
    stratified,
    temporal,
    validation_split,
)

__all__ = [
    "PROTOCOLS",
    "REPORT_KEYS",
    "SEGMENTS",
    "Evaluation",
    "PairedTest",
    "Split",
    "build_report",
    "cold_items",
    "deduplicate",
    "evaluate",
    "leave_last",
    "metric_keys",
    "metrics_table",
    "paired_test",
    "render_text",
    "split",
    "stratified",
    "temporal",
    "validation_split",
]
