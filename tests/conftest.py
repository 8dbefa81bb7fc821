"""Shared fixtures: an isolated RECSYS_HOME, offline Hugging Face, quiet Prefect."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RECSYS_HOME", tempfile.mkdtemp(prefix="recsys-test-"))

from flows.env import apply_defaults  # noqa: E402  (needs RECSYS_HOME first)

apply_defaults()

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this machine has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
