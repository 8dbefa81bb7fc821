"""One writer per state folder: an advisory lock on ``RECSYS_HOME`` held by a whole run.

A scheduled training and an ad-hoc one (or an erasure) on the same ``RECSYS_HOME`` would
otherwise write the same warehouse file, run folders and cache records at once. The lock is
``flock`` on ``RECSYS_HOME/.lock``: the kernel drops it when its process dies, so a killed
run never leaves a stale lock. The file names the holder, so the one that waits can say whom
it waits for. The lock is re-entrant within a process (a flow holding it may run a subflow
that asks for it again); it orders processes, not threads.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = ".lock"
_POLL_S = 0.5

_held: dict[Path, int] = {}
_guard = threading.Lock()


class HomeBusy(RuntimeError):
    """The state folder stayed locked by another process for longer than allowed."""


@contextmanager
def home_lock(home: str | Path, holder: str, on_wait: Callable[[str], object] | None = None,
              timeout_s: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of the state folder ``home`` for the block.

    Args:
        home: the state folder (``Settings.home``).
        holder: who holds it, for the message of a process that has to wait (no user data).
        on_wait: called once with a one-line message when another process holds the lock.
        timeout_s: give up after this many seconds of waiting (``None``: wait as long as the
            other run takes).

    Raises:
        HomeBusy: ``timeout_s`` passed and the other process still holds the lock.
    """
    path = Path(home).expanduser().resolve() / LOCK_FILE
    with _guard:
        reentrant = path in _held
        if reentrant:
            _held[path] += 1
    if reentrant:
        try:
            yield
        finally:
            with _guard:
                _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        _acquire(handle, path, on_wait, timeout_s)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder} (pid {os.getpid()}, since "
                     f"{datetime.now(UTC).isoformat(timespec='seconds')})\n")
        handle.flush()
        with _guard:
            _held[path] = 1
        try:
            yield
        finally:
            with _guard:
                del _held[path]
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle, path: Path, on_wait: Callable[[str], object] | None,
             timeout_s: float | None) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    handle.seek(0)
    who = handle.read().strip() or "another process"
    if on_wait is not None:
        on_wait(f"{path.parent} is in use by {who}: waiting for it to finish")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if deadline is not None and time.monotonic() > deadline:
                raise HomeBusy(f"{path.parent} is still in use by {who} after "
                               f"{timeout_s:g}s") from None
            time.sleep(_POLL_S)
