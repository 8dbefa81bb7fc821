"""The temporary Prefect API starts beside the block that imports a flow, and is up after it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.app.api import local_api_starting


@dataclass
class Starts:
    threads: list[str] = field(default_factory=list)
    block_began: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def starts(monkeypatch) -> Starts:
    """Fake server starts: each records its thread, after waiting until the block has begun."""
    seen = Starts()

    def start(self, timeout=None) -> None:
        assert seen.block_began.wait(5), "the block did not run while the server started"
        seen.threads.append(threading.current_thread().name)

    monkeypatch.setattr(SubprocessASGIServer, "start", start)
    return seen


def test_without_an_api_url_the_server_starts_while_the_block_runs(starts) -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with local_api_starting():
            assert not starts.threads  # not up before the block has run ...
            starts.block_began.set()
        assert starts.threads == ["prefect-local-api"]  # ... and up once it has


def test_a_failed_start_is_raised_after_the_block(monkeypatch) -> None:
    def start(self, timeout=None) -> None:
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API")

    monkeypatch.setattr(SubprocessASGIServer, "start", start)
    ran = []
    with temporary_settings(restore_defaults={PREFECT_API_URL}), \
            pytest.raises(RuntimeError, match="Timed out"):
        with local_api_starting():
            ran.append(True)
    assert ran == [True]


def test_with_an_api_url_nothing_is_started(monkeypatch) -> None:
    monkeypatch.setattr(SubprocessASGIServer, "start", lambda *a, **k: pytest.fail("started"))
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        with local_api_starting():
            pass
