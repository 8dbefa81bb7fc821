"""Fresh events: interactions appended after a version's training snapshot, for serving.

Each append (``recsys ingest --append``) exports the interactions its new snapshot holds and
its parent lacks to one Parquet file in ``Settings.events_dir``, named ``PARENT-SNAPSHOT``;
the file is written aside and renamed, so a reader sees all of it or nothing. A served model
reads these files, never the DuckDB warehouse: DuckDB lets a process that writes the file keep
every other process out of it meanwhile (read-only openings too), so a server reading the
warehouse would make ingestion fail while it reads, or fail its reads while ingestion writes.
The files also travel: a server on another host needs a copy of the folder, not the database.

``EventFeed`` polls the folder and keeps, per user, the items of every export that descends
from the version's snapshot (appends to appends included), oldest first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

SUFFIX = ".parquet"
COLUMNS = ("user_id", "item_id", "ts")
"""What an export keeps of each interaction (ordered by ``ts`` when folded in)."""


def events_file(folder: str | Path, parent: str, snapshot: str) -> Path:
    """The export of the interactions ``snapshot`` added to its parent snapshot.

    Args:
        folder: the events folder.
        parent: the snapshot appended to.
        snapshot: the snapshot the append made.
    """
    return Path(folder) / f"{parent}-{snapshot}{SUFFIX}"


def write_events(folder: str | Path, parent: str, snapshot: str,
                 interactions: pl.DataFrame) -> Path:
    """Export an append's new interactions for served models (atomically).

    Args:
        folder: the events folder (created when missing).
        parent: the snapshot appended to.
        snapshot: the snapshot the append made.
        interactions: the interactions ``snapshot`` holds and ``parent`` lacks (canonical
            columns; only ``COLUMNS`` are kept).
    """
    target = events_file(folder, parent, snapshot)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    interactions.select(COLUMNS).write_parquet(tmp)
    os.replace(tmp, target)
    log.info("exported %d interactions appended to %s: %s", interactions.height, parent,
             target)
    return target


class EventFeed:
    """Per user, the items touched after a snapshot, read from an events folder.

    The folder is read again at most every ``interval_s`` seconds, when asked for a user
    (no background thread); only files new or changed since are parsed.

    Args:
        folder: the events folder (may not exist yet).
        snapshot: the snapshot the served version was trained on.
        interval_s: seconds between looks at the folder.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, folder: str | Path, snapshot: str, interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = Path(folder)
        self.snapshot = snapshot
        self.interval_s = interval_s
        self._clock = clock
        self._due = float("-inf")
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, pl.DataFrame]] = {}
        self._signature: tuple[tuple[str, int], ...] = ()
        self._by_user: Mapping[str, list[str]] = {}

    def recent(self, user_id: str) -> list[str]:
        """Item IDs ``user_id`` touched after the snapshot, oldest first ([] for none).

        Args:
            user_id: the user.
        """
        if self._clock() >= self._due:
            self.poll()
        return self._by_user.get(user_id, [])

    def users(self) -> int:
        """How many users have events after the snapshot (as of the last look)."""
        return len(self._by_user)

    def poll(self) -> bool:
        """Look at the folder if ``interval_s`` has passed since the last look.

        Returns:
            Whether the events changed.
        """
        with self._lock:
            if self._clock() < self._due:
                return False
            return self._refresh()

    def refresh(self) -> bool:
        """Look at the folder now; True when the events changed."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        self._due = self._clock() + self.interval_s
        try:
            return self._read()
        except Exception as error:  # a server keeps its last events; the next look retries
            log.warning("events in %s not read: %s", self.directory, error)
            return False

    def _read(self) -> bool:
        wanted = self._descendants(self._listing())
        if tuple(wanted.items()) == self._signature:
            return False
        import polars as pl

        files = {}
        for name, mtime in wanted.items():
            cached = self._files.get(name)
            files[name] = (cached if cached is not None and cached[0] == mtime
                           else (mtime, pl.read_parquet(self.directory / name,
                                                        columns=list(COLUMNS))))
        by_user: dict[str, list[str]] = {}
        if files:
            grouped = (pl.concat([frame for _, frame in files.values()])
                       .sort("ts", maintain_order=True)
                       .group_by("user_id", maintain_order=True).agg(pl.col("item_id")))
            by_user = dict(zip(grouped["user_id"].to_list(), grouped["item_id"].to_list(),
                               strict=True))
        self._files, self._signature, self._by_user = files, tuple(wanted.items()), by_user
        log.info("events after snapshot %s: %d files, %d users", self.snapshot, len(files),
                 len(by_user))
        return True

    def _listing(self) -> dict[str, int]:
        try:
            with os.scandir(self.directory) as entries:
                return {entry.name: entry.stat().st_mtime_ns for entry in entries
                        if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")}
        except FileNotFoundError:
            return {}

    def _descendants(self, listing: dict[str, int]) -> dict[str, int]:
        """The files on a chain of appends starting at the snapshot, sorted by name."""
        edges = {}
        for name in listing:
            parent, _, child = name.removesuffix(SUFFIX).partition("-")
            if child:
                edges[name] = (parent, child)
        reached, wanted = {self.snapshot}, {}
        grew = True
        while grew:
            grew = False
            for name, (parent, child) in edges.items():
                if parent in reached and name not in wanted:
                    wanted[name] = listing[name]
                    reached.add(child)
                    grew = True
        return dict(sorted(wanted.items()))
