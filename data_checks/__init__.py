"""Great Expectations suites per canonical table and a runner that splits clean from bad rows."""

from data_checks.checks import check_interactions, check_items
from data_checks.report import CheckReport, Outcome
from data_checks.runner import ValidationResult, validate_dataset

__all__ = ["CheckReport", "Outcome", "ValidationResult", "check_interactions", "check_items",
           "validate_dataset"]
