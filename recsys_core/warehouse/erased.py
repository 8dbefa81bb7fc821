"""Erasing users from the warehouse's tables, and keeping them out of later loads.

``erase`` deletes a user's rows from every table that holds user rows (raw, clean and
quarantined interactions of every batch, users' attributes), gives each changed snapshot the
id of its new content (``snapshot_id`` stays a content hash, so loading the same source again
finds the erased snapshot instead of writing a copy) and records a SHA-256 of each erased id
in ``erased_users``, which ``suppress`` reads to drop the users' rows from later loads. Only
the hash is kept: enough to recognise the id again, not to print it.

DuckDB keeps a deleted row's bytes in its file until the blocks are reused; ``rewrite_file``
copies the live tables into a fresh file and moves it over the old one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.warehouse import tables as T
from recsys_core.warehouse.snapshot import snapshot_id

log = logging.getLogger(__name__)

USER_TABLES = ("raw_interactions", "clean_interactions", "quarantine_interactions",
               "clean_users")
"""Every warehouse table with a ``user_id`` column written by loads."""
_IDS_VIEW = "_erase_ids"

ReadSnapshot = Callable[[duckdb.DuckDBPyConnection, str], Dataset]
"""Reads a snapshot's clean tables on a connection (``store.read_snapshot``)."""


def user_hash(user_id: str) -> str:
    """The SHA-256 (hex) of a user id, as ``erased_users`` stores it.

    Args:
        user_id: the id.
    """
    return hashlib.sha256(str(user_id).encode("utf-8")).hexdigest()


def erased_ids(con: duckdb.DuckDBPyConnection, ids: Iterable[str]) -> set[str]:
    """The ids among ``ids`` whose hash ``erased_users`` holds.

    Args:
        con: a connection to the warehouse.
        ids: candidate user ids.
    """
    by_hash = {user_hash(i): i for i in {str(i) for i in ids}}
    if not by_hash:
        return set()
    found = con.execute(f"SELECT user_hash FROM {T.ERASED_USERS} WHERE list_contains(?, user_hash)",
                        [list(by_hash)]).fetchall()
    return {by_hash[row[0]] for row in found}


def suppress(con: duckdb.DuckDBPyConnection, dataset: Dataset,
             quarantine: Mapping[str, pl.DataFrame]
             ) -> tuple[Dataset, dict[str, pl.DataFrame], int]:
    """``dataset`` and its quarantined rows without the rows of erased users.

    Args:
        con: a connection to the warehouse.
        dataset: a load's tables.
        quarantine: its quarantined rows per table.

    Returns:
        The dataset, the quarantine and how many rows were dropped.
    """
    seen = dataset.interactions[S.USER_ID].drop_nulls().unique().to_list()
    if dataset.users is not None:
        seen += dataset.users[S.USER_ID].drop_nulls().unique().to_list()
    for frame in quarantine.values():
        if S.USER_ID in frame.columns:
            seen += frame[S.USER_ID].drop_nulls().unique().to_list()
    erased = erased_ids(con, seen)
    if not erased:
        return dataset, dict(quarantine), 0

    def keep(frame: pl.DataFrame) -> pl.DataFrame:
        if S.USER_ID not in frame.columns:
            return frame
        return frame.filter(~pl.col(S.USER_ID).is_in(list(erased)) | pl.col(S.USER_ID).is_null())

    users = None if dataset.users is None else keep(dataset.users)
    kept = Dataset(dataset.name, keep(dataset.interactions), dataset.items, users)
    bad = {table: keep(frame) for table, frame in quarantine.items()}
    dropped = (dataset.interactions.height - kept.interactions.height
               + sum(quarantine[t].height - bad[t].height for t in quarantine)
               + (0 if users is None or dataset.users is None
                  else dataset.users.height - users.height))
    log.info("dropped %d rows of %d erased users from load %s", dropped, len(erased),
             dataset.name)
    return kept, bad, dropped


def erase(con: duckdb.DuckDBPyConnection, user_ids: Iterable[str],
          read: ReadSnapshot) -> tuple[dict[str, int], dict[str, str]]:
    """Delete the users' rows everywhere, re-key changed snapshots, remember the hashes.

    Runs on the caller's connection, inside its transaction.

    Args:
        con: a connection to the warehouse, in a transaction.
        user_ids: the users.
        read: reads a snapshot's dataset on ``con`` (``store.read_snapshot``).

    Returns:
        Rows deleted per table plus ``snapshots`` (how many changed id), and the changed
        snapshots' ids: old -> new.
    """
    ids = sorted({str(i) for i in user_ids})
    con.register(_IDS_VIEW, pa.table({"user_id": pa.array(ids, pa.string())}))
    try:
        touched = [row[0] for row in con.execute(
            f"SELECT DISTINCT snapshot_id FROM clean_interactions WHERE user_id IN "
            f"(SELECT user_id FROM {_IDS_VIEW}) UNION SELECT DISTINCT snapshot_id FROM "
            f"clean_users WHERE user_id IN (SELECT user_id FROM {_IDS_VIEW})").fetchall()]
        counts = {}
        for table in USER_TABLES:
            row = con.execute(f"DELETE FROM {T.quote(table)} WHERE user_id IN "
                              f"(SELECT user_id FROM {_IDS_VIEW})").fetchone()
            counts[table] = 0 if row is None else int(row[0])
    finally:
        con.unregister(_IDS_VIEW)
    con.executemany(f"INSERT OR IGNORE INTO {T.ERASED_USERS} VALUES (?)",
                    [[user_hash(i)] for i in ids])
    renamed = {old: snapshot_id(read(con, old)) for old in sorted(touched)}
    for old, new in renamed.items():
        _rekey(con, old, new)
    changed = {old: new for old, new in renamed.items() if old != new}
    counts["snapshots"] = len(changed)
    return counts, changed


def _rekey(con: duckdb.DuckDBPyConnection, old: str, new: str) -> None:
    """Give snapshot ``old`` the id ``new`` of its content (merging into ``new`` if it exists)."""
    if old == new:
        return
    exists = con.execute("SELECT 1 FROM snapshots WHERE snapshot_id = ?", [new]).fetchall()
    for table in ("clean_interactions", "clean_items", "clean_users"):
        if exists:
            con.execute(f"DELETE FROM {table} WHERE snapshot_id = ?", [old])
        else:
            con.execute(f"UPDATE {table} SET snapshot_id = ? WHERE snapshot_id = ?", [new, old])
    if exists:
        con.execute("DELETE FROM snapshots WHERE snapshot_id = ?", [old])
    else:
        con.execute("UPDATE snapshots SET snapshot_id = ?, n_interactions = (SELECT count(*) "
                    "FROM clean_interactions WHERE snapshot_id = ?) WHERE snapshot_id = ?",
                    [new, new, old])
    con.execute("UPDATE load_batches SET snapshot_id = ? WHERE snapshot_id = ?", [new, old])
    con.execute("UPDATE snapshots SET parent_id = ? WHERE parent_id = ?", [new, old])
    con.execute("UPDATE snapshots SET parent_id = NULL WHERE parent_id = snapshot_id")
    log.info("snapshot %s is %s after the erasure", old, new)


def rewrite_file(path: str | Path) -> Path:
    """Copy the live tables of a DuckDB file into a fresh file and move it over the old one.

    The old file's free blocks may still hold deleted rows; the copy holds only what the
    tables hold now. The new file is complete before it replaces the old one (a crash leaves
    the old file, and at worst a stray ``.rewrite`` file that the next rewrite replaces).

    Args:
        path: the DuckDB file (no other connection may be open on it).
    """
    target = Path(path)
    fresh = target.with_name(f".{target.name}.rewrite")
    fresh.unlink(missing_ok=True)
    with duckdb.connect(str(target)) as con:
        con.execute("CHECKPOINT")
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{_sql_path(target)}' AS old (READ_ONLY)")
        con.execute(f"ATTACH '{_sql_path(fresh)}' AS fresh")
        con.execute("COPY FROM DATABASE old TO fresh")
        con.execute("DETACH old")
        con.execute("CHECKPOINT fresh")
        con.execute("DETACH fresh")
    with open(fresh, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(fresh, target)
    return target


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
