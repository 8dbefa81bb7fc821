"""Warehouse: DuckDB tables for raw, clean and quarantined rows, loaded in batches.

Tables (see ``tables.ddl``): ``raw_<t>`` (every row a batch read, clean or quarantined, by
``batch_id``), ``clean_<t>`` (by content-addressed ``snapshot_id``, written once per snapshot,
with ``row_idx`` fixing the order), ``quarantine_<t>`` (by ``batch_id``, with ``_row`` and
``reason``: the batch's bad, ``duplicate`` and ``superseded`` rows, and for an append the base
snapshot's rows it replaced, ``superseded`` with a null ``_row``), ``clean_users`` (attributes
as JSON), ``snapshots`` (with the batch that created each and, for an append, its
``parent_id``) and ``load_batches``.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.warehouse import erased as E
from recsys_core.warehouse import tables as T
from recsys_core.warehouse import writes as W
from recsys_core.warehouse.increments import merge
from recsys_core.warehouse.snapshot import snapshot_id

logger = logging.getLogger(__name__)


class Warehouse:
    """A DuckDB file holding every load and every clean snapshot.

    Args:
        path: the DuckDB database file (created with its tables when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            for statement in T.ddl():
                con.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(str(self.path))
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def load(self, dataset: Dataset, quarantine: dict[str, pl.DataFrame] | None = None) -> str:
        """Write one load batch in a single transaction and return the clean snapshot id.

        The clean tables are written only when the snapshot is new (loading the same content
        again adds a batch, not rows). On any error nothing is written. Rows of users erased
        before (``forget``) are dropped first.

        Args:
            dataset: the clean dataset (canonical columns; extra columns are ignored).
            quarantine: table (``interactions``, ``items``) -> quarantined rows with canonical
                columns, ``_row`` and ``reason`` (``ValidationResult.quarantine``).
        """
        dataset, quarantine = self._suppressed(dataset, quarantine)
        return self._commit(dataset, dataset, quarantine)

    def append(self, increment: Dataset, quarantine: dict[str, pl.DataFrame] | None = None,
               *, base: str | None = None) -> str:
        """Append an increment to a snapshot in one transaction; return the new snapshot id.

        The new snapshot holds the base snapshot's rows with the increment applied, one row
        per key: interactions keyed by (``user_id``, ``item_id``, ``ts``), items by
        ``item_id``; the increment's row wins (see ``increments.merge``). The batch records
        the increment's rows (raw and quarantined), its parent snapshot, the duplicates
        dropped, and the base rows it replaced: in ``quarantine_<table>`` under this batch
        with reason ``superseded`` and a null ``_row``, counted in ``n_replaced_<table>``.
        Validate the increment with ``known_item_ids`` set to the base's items so that
        interactions with existing items pass referential integrity.

        Args:
            increment: the increment's clean tables (canonical columns).
            quarantine: the increment's quarantined rows, as for ``load``.
            base: the snapshot to append to; default the latest. With none at all, this is
                a plain ``load``.

        Raises:
            DataError: ``base`` is not a snapshot of this warehouse.
        """
        increment, quarantine = self._suppressed(increment, quarantine)
        base = base or self.latest_snapshot()
        if base is None:
            return self.load(increment, quarantine)
        merged = merge(self.dataset(base), increment)
        logger.info("appending %s to %s: %s duplicates, %s replaced", increment.name, base,
                    merged.duplicates, {t: f.height for t, f in merged.superseded.items()})
        return self._commit(merged.dataset, increment, quarantine, parent=base,
                            duplicates=merged.duplicates, replaced=merged.superseded)

    def _commit(self, snapshot: Dataset, batch: Dataset,
                quarantine: dict[str, pl.DataFrame] | None, *, parent: str | None = None,
                duplicates: Mapping[str, int] | None = None,
                replaced: Mapping[str, pl.DataFrame] | None = None) -> str:
        quarantine = quarantine or {}
        unknown = set(quarantine) - set(T.CANONICAL)
        if unknown:
            raise DataError(f"unknown quarantine tables: {sorted(unknown)}")
        clean = {"interactions": S.conform(snapshot.interactions, S.INTERACTIONS_SCHEMA),
                 "items": S.conform(snapshot.items, S.ITEMS_SCHEMA)}
        read = {"interactions": S.conform(batch.interactions, S.INTERACTIONS_SCHEMA),
                "items": S.conform(batch.items, S.ITEMS_SCHEMA)}
        bad = {t: quarantine.get(t, pl.DataFrame(schema=schema))
               for t, schema in T.CANONICAL.items()}
        duplicates = {t: (duplicates or {}).get(t, 0) for t in T.CANONICAL}
        replaced = {t: S.conform((replaced or {}).get(t, pl.DataFrame(schema=schema)), schema)
                    for t, schema in T.CANONICAL.items()}
        snap, batch_id = snapshot_id(snapshot), uuid.uuid4().hex
        now = datetime.now(UTC)
        with self._connect() as con:
            con.begin()
            try:
                if not con.execute("SELECT 1 FROM snapshots WHERE snapshot_id = ?",
                                   [snap]).fetchall():
                    W.write_snapshot(con, snap, snapshot, clean, now,
                                      {T.PARENT_ID: parent, T.BATCH_ID: batch_id})
                for table, schema in T.CANONICAL.items():
                    W.write_batch(con, table, schema, batch_id, read[table], bad[table],
                                  replaced[table])
                con.execute(*T.insert_row("load_batches", {
                    T.BATCH_ID: batch_id, T.SNAPSHOT_ID: snap, "dataset": batch.name,
                    "loaded_at": now, "n_clean_interactions": read["interactions"].height,
                    "n_clean_items": read["items"].height,
                    "n_quarantined_interactions": bad["interactions"].height,
                    "n_quarantined_items": bad["items"].height, T.PARENT_ID: parent,
                    "n_duplicate_interactions": duplicates["interactions"],
                    "n_duplicate_items": duplicates["items"],
                    "n_replaced_interactions": replaced["interactions"].height,
                    "n_replaced_items": replaced["items"].height}))
                con.commit()
            except BaseException:
                con.rollback()
                raise
        logger.info("loaded batch %s of %s: snapshot %s", batch_id, batch.name, snap)
        return snap

    def _suppressed(self, dataset: Dataset, quarantine: dict[str, pl.DataFrame] | None
                    ) -> tuple[Dataset, dict[str, pl.DataFrame]]:
        with self._connect() as con:
            kept, bad, _ = E.suppress(con, dataset, quarantine or {})
        return kept, bad

    def forget(self, user_ids: Iterable[str]) -> tuple[dict[str, int], dict[str, str]]:
        """Erase users' rows from every table, in one transaction (see ``erased.erase``).

        Snapshots whose content changed get the id of their new content, and later loads
        drop the users' rows. The deleted bytes stay in the file until ``rewrite``.

        Args:
            user_ids: the users.

        Returns:
            Rows deleted per table plus ``snapshots`` (how many changed id), and the changed
            snapshots' ids: old -> new.
        """
        with self._connect() as con:
            con.begin()
            try:
                counts, renamed = E.erase(con, user_ids, read_snapshot)
                con.commit()
            except BaseException:
                con.rollback()
                raise
        return counts, renamed

    def erased(self, user_ids: Iterable[str]) -> set[str]:
        """The ids among ``user_ids`` that were erased (``forget``).

        Args:
            user_ids: candidate ids.
        """
        with self._connect() as con:
            return E.erased_ids(con, user_ids)

    def rewrite(self) -> Path:
        """Rewrite the file with only its live rows (``erased.rewrite_file``); returns it."""
        return E.rewrite_file(self.path)

    def query(self, sql: str, params: Params = ()) -> pl.DataFrame:
        """Run a read query with bound parameters and return a Polars frame (via Arrow).

        Args:
            sql: one SELECT statement, with ``?`` (or ``$name``) placeholders.
            params: the values bound to the placeholders (a mapping for ``$name`` ones).
        """
        return self.queries([(sql, params)])[0]

    def queries(self, statements: Sequence[tuple[str, Params]], *,
                snapshot: str | None = None) -> list[pl.DataFrame]:
        """Run read queries on one connection (one file open), in order.

        Args:
            statements: (SELECT statement, bound parameters) pairs, as for ``query``.
            snapshot: when given, first check that this snapshot exists.

        Raises:
            DataError: ``snapshot`` is not a snapshot of this warehouse.
        """
        check = [] if snapshot is None else [(_SNAPSHOT_SQL, [snapshot])]
        with self._connect() as con:
            frames = [_read(con, sql, params) for sql, params in [*check, *statements]]
        if check and frames[0].is_empty():
            raise DataError(f"{self.path}: unknown snapshot '{snapshot}'")
        return frames[len(check):]

    def interactions(self, snap: str) -> pl.DataFrame:
        """Read the clean canonical interactions of snapshot ``snap``, in stored order.

        Args:
            snap: a snapshot id returned by ``load``.
        """
        frame, = self.queries([_clean_sql("interactions", snap)], snapshot=snap)
        return S.conform(frame, S.INTERACTIONS_SCHEMA)

    def items(self, snap: str) -> pl.DataFrame:
        """Read the clean canonical items of snapshot ``snap``, in stored order.

        Args:
            snap: a snapshot id returned by ``load``.
        """
        frame, = self.queries([_clean_sql("items", snap)], snapshot=snap)
        return S.conform(frame, S.ITEMS_SCHEMA)

    def users(self, snap: str) -> pl.DataFrame | None:
        """``user_id`` plus attribute columns of snapshot ``snap``; ``None`` when it had none.

        Args:
            snap: a snapshot id returned by ``load``.
        """
        frame, = self.queries([(_USERS_SQL, [snap])], snapshot=snap)
        return _users(frame)

    def dataset(self, snap: str) -> Dataset:
        """Read every clean table of snapshot ``snap`` (one file open), named as loaded.

        Args:
            snap: a snapshot id returned by ``load`` or ``append``.
        """
        with self._connect() as con:
            if not con.execute(_SNAPSHOT_SQL, [snap]).fetchall():
                raise DataError(f"{self.path}: unknown snapshot '{snap}'")
            return read_snapshot(con, snap)

    def appended(self, snap: str) -> tuple[str | None, pl.DataFrame]:
        """The snapshot ``snap`` was appended to, and the interactions the append added.

        The rows of ``snap`` its parent lacks, value for value: new events, and rows that
        replaced the parent's row of their key. A snapshot made by a load has neither.

        Args:
            snap: a snapshot id returned by ``append``.

        Raises:
            DataError: ``snap`` is not a snapshot of this warehouse.
        """
        parent = self.queries([(f"SELECT {T.quote(T.PARENT_ID)} FROM snapshots WHERE "
                                f"{T.quote(T.SNAPSHOT_ID)} = ?", [snap])], snapshot=snap)[0]
        base = parent.item() if parent.height else None
        if base is None:
            return None, pl.DataFrame(schema=S.INTERACTIONS_SCHEMA)
        columns = ", ".join(T.quote(c) for c in T.CANONICAL["interactions"])
        rows = (f"SELECT {columns} FROM {T.quote('clean_interactions')} "
                f"WHERE {T.quote(T.SNAPSHOT_ID)} = ?")
        added, = self.queries([(f"{rows} EXCEPT ALL {rows}", [snap, base])])
        return base, S.conform(added, S.INTERACTIONS_SCHEMA)

    def snapshots(self) -> pl.DataFrame:
        """Every snapshot, oldest first."""
        return self.query("SELECT * FROM snapshots ORDER BY created_at, snapshot_id")

    def batches(self) -> pl.DataFrame:
        """Every load batch, oldest first."""
        return self.query("SELECT * FROM load_batches ORDER BY loaded_at, batch_id")

    def latest_snapshot(self) -> str | None:
        """Return the most recent load batch's snapshot, or ``None`` for an empty warehouse."""
        frame = self.query("SELECT snapshot_id FROM load_batches "
                           "ORDER BY loaded_at DESC, batch_id DESC LIMIT 1")
        return None if frame.is_empty() else frame.item()

    def quarantined(self, table: str, batch_id: str | None = None) -> pl.DataFrame:
        """Quarantined rows of ``table`` (``interactions`` or ``items``), optionally one batch.

        Args:
            table: ``interactions`` or ``items``.
            batch_id: restrict to this load batch.
        """
        if table not in T.CANONICAL:
            raise DataError(f"unknown table '{table}' (expected one of {sorted(T.CANONICAL)})")
        sql = f"SELECT * FROM {T.quote('quarantine_' + table)}"
        if batch_id is None:
            return self.query(sql)
        return self.query(sql + f" WHERE {T.quote(T.BATCH_ID)} = ?", [batch_id])


Params = Sequence[object] | Mapping[str, object]
_SNAPSHOT_SQL = "SELECT 1 FROM snapshots WHERE snapshot_id = ?"
_USERS_SQL = ("SELECT user_id, attributes FROM clean_users WHERE snapshot_id = ? "
              "ORDER BY row_idx")


def _bind(params: Params) -> list[object] | dict[str, object]:
    return dict(params) if isinstance(params, Mapping) else list(params)


def _read(con: duckdb.DuckDBPyConnection, sql: str, params: Params) -> pl.DataFrame:
    """One query's result as a Polars frame."""
    frame = pl.from_arrow(con.sql(sql, params=_bind(params)).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)  # an Arrow table (not an array) reads as a frame
    return frame


def _clean_sql(table: str, snap: str) -> tuple[str, list[object]]:
    columns = ", ".join(T.quote(c) for c in T.CANONICAL[table])
    return (f"SELECT {columns} FROM {T.quote('clean_' + table)} "
            f"WHERE {T.quote(T.SNAPSHOT_ID)} = ? ORDER BY {T.quote(T.ROW_IDX)}", [snap])


def read_snapshot(con: duckdb.DuckDBPyConnection, snap: str) -> Dataset:
    """Every clean table of snapshot ``snap`` (which exists), read on ``con``.

    Args:
        con: a connection to the warehouse (inside a transaction, it reads that state).
        snap: the snapshot id.
    """
    queries: list[tuple[str, Params]] = [
        ("SELECT dataset FROM snapshots WHERE snapshot_id = ?", [snap]),
        _clean_sql("interactions", snap), _clean_sql("items", snap), (_USERS_SQL, [snap])]
    name, inter, items, users = [_read(con, sql, params) for sql, params in queries]
    return Dataset(name.item(), S.conform(inter, S.INTERACTIONS_SCHEMA),
                   S.conform(items, S.ITEMS_SCHEMA), _users(users))


def _users(frame: pl.DataFrame) -> pl.DataFrame | None:
    if frame.is_empty():
        return None
    lines = "\n".join(frame[T.ATTRIBUTES].to_list()).encode()
    return frame.select(S.USER_ID).hstack(pl.read_ndjson(io.BytesIO(lines)))
