"""The state folder's lock: one writer process at a time, released when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recsys_core.lock import HomeBusy, home_lock

HOLDER = """
import sys, time
from recsys_core.lock import home_lock
with home_lock(sys.argv[1], "flow train_flow"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(home: Path, seconds: float) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(home), str(seconds)],
                             cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_second_process_waits_with_a_message_naming_the_holder(tmp_path: Path) -> None:
    child = hold(tmp_path, 1.5)
    messages: list[str] = []
    start = time.monotonic()
    with home_lock(tmp_path, "flow forget_flow", on_wait=messages.append):
        waited = time.monotonic() - start
        assert f"forget_flow (pid {os.getpid()}" in (tmp_path / ".lock").read_text()
    child.wait(timeout=30)
    assert waited > 0.5 and len(messages) == 1
    assert messages[0].startswith(f"{tmp_path} is in use by flow train_flow (pid {child.pid}")
    assert messages[0].endswith("waiting for it to finish")
    assert (tmp_path / ".lock").read_text() == ""  # released: names nobody


def test_the_wait_can_be_bounded(tmp_path: Path) -> None:
    child = hold(tmp_path, 30)
    try:
        with pytest.raises(HomeBusy, match=f"still in use by flow train_flow .pid {child.pid}"):
            with home_lock(tmp_path, "flow other", timeout_s=0.5):
                pass
    finally:
        child.kill()
        child.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    child = hold(tmp_path, 30)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with home_lock(tmp_path, "flow after", timeout_s=2):
        pass


def test_the_holder_may_ask_again_within_its_process(tmp_path: Path) -> None:
    with home_lock(tmp_path, "flow forget_flow"):
        with home_lock(tmp_path, "flow train_flow", timeout_s=0.1):  # a subflow
            assert "forget_flow" in (tmp_path / ".lock").read_text()
        assert "forget_flow" in (tmp_path / ".lock").read_text()
