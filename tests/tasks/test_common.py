"""The shared retry rule and cache key parts of the tasks."""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from recsys_core.data.errors import DataError
from tasks import common


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self):
        raise self.exc


@pytest.mark.parametrize("exc", [
    ConnectionResetError("peer"), TimeoutError("slow disk"), OSError("NFS hiccup"),
    duckdb.IOException("Could not set lock on file"),
    MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE),
])
def test_io_failures_are_retried(exc: BaseException) -> None:
    assert common.retry_on_io(None, None, _Failed(exc)) is True


@pytest.mark.parametrize("exc", [
    FileNotFoundError("no such dataset"), PermissionError("read-only"),
    DataError("bad rows"), ValueError("bad parameter"), KeyError("column"),
    RuntimeError("bug"), MlflowException("bad name", error_code=INVALID_PARAMETER_VALUE),
    OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EDQUOT, "Quota exceeded"),
])
def test_bad_input_and_bugs_fail_at_once(exc: BaseException) -> None:
    assert common.retry_on_io(None, None, _Failed(exc)) is False


def test_io_retries_back_off() -> None:
    delays = common.IO_RETRIES["retry_delay_seconds"]
    assert len(delays) == common.IO_RETRIES["retries"] and delays == sorted(delays)
    assert common.IO_RETRIES["retry_condition_fn"] is common.retry_on_io


def test_cache_key_follows_core_code_and_state_folder(monkeypatch, tmp_path: Path) -> None:
    key = common._code_and_state(None, {})
    assert common.core_digest() in key and len(common.core_digest()) == 64
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))
    assert common._code_and_state(None, {}) != key
    assert str(tmp_path.resolve()) in common._code_and_state(None, {})
