"""What every task shares: cache policy, retry rule, result storage."""

from __future__ import annotations

from prefect.cache_policies import INPUTS, TASK_SOURCE

from recsys_core.data.errors import DataError

CACHED = INPUTS + TASK_SOURCE
"""Stages worth skipping on a rerun: same inputs and same task code -> same result."""


def retry_on_io(task, task_run, state) -> bool:
    """Retry only I/O failures; bad data and bugs fail at once."""
    try:
        state.result()
    except (DataError, ValueError, TypeError, KeyError):
        return False
    except OSError:
        return True
    except Exception:  # noqa: BLE001  (anything else: not worth retrying)
        return False
    return False
