"""What every task shares: the cache policy, the retry rule and its backoff, result models."""

from __future__ import annotations

import errno
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from prefect.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFnPolicy
from prefect.context import TaskRunContext
from pydantic import BaseModel, ConfigDict

import recsys_core
from recsys_core.config import get_settings
from recsys_core.data.errors import DataError


@cache
def core_digest() -> str:
    """A digest of the ``recsys_core`` sources: a model change invalidates cached stages."""
    digest = hashlib.sha256()
    root = Path(recsys_core.__file__).parent
    for path in sorted(root.rglob("*.py")) + sorted(root.rglob("*.sql")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _code_and_state(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return f"{core_digest()}|{get_settings().home}"


CACHED = INPUTS + TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=_code_and_state)
"""Stages worth skipping on a rerun: same inputs, task code, core code and state folder."""

def retry_on_io(task, task_run, state) -> bool:
    """Retry only I/O failures (files, locks, servers); bad data and bugs fail at once."""
    try:
        state.result()
    except (DataError, ValueError, TypeError, KeyError):
        return False
    except (OSError, duckdb.IOException) as exc:
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            return False  # a full disk stays full for the seconds a retry waits
        return not isinstance(exc, FileNotFoundError | PermissionError)
    except Exception as exc:  # noqa: BLE001  (MLflow reports a locked or unreachable store so)
        return getattr(exc, "error_code", None) == "TEMPORARILY_UNAVAILABLE"
    return False


IO_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [2, 8, 30],
                              "retry_jitter_factor": 0.5, "retry_condition_fn": retry_on_io}
"""``@task(**IO_RETRIES)``: stages that talk to files, databases or servers retry I/O errors
after 2 s, 8 s and 30 s (each +-50%)."""


class Result(BaseModel):
    """A task's or flow's result: a small frozen model, read by attribute (Prefect pickles it)."""

    model_config = ConfigDict(frozen=True)
