"""The one error type for bad input data."""

from __future__ import annotations


class DataError(ValueError):
    """Input data that cannot be read or fails validation; the message is one line."""
