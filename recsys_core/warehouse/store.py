"""Warehouse: DuckDB tables for raw, clean and quarantined rows, loaded in batches.

Tables (see ``tables.ddl``): ``raw_<t>`` (every row a batch read, clean or quarantined, by
``batch_id``), ``clean_<t>`` (by content-addressed ``snapshot_id``, written once per snapshot,
with ``row_idx`` fixing the order), ``quarantine_<t>`` (bad rows with ``_row`` and ``reason``,
by ``batch_id``), ``clean_users`` (attributes as JSON), ``snapshots`` and ``load_batches``.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.warehouse import tables as T
from recsys_core.warehouse.snapshot import canonical_order, snapshot_id

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
        again adds a batch, not rows). On any error nothing is written.

        Args:
            dataset: the clean dataset (canonical columns; extra columns are ignored).
            quarantine: table (``interactions``, ``items``) -> quarantined rows with canonical
                columns, ``_row`` and ``reason`` (``ValidationResult.quarantine``).
        """
        quarantine = quarantine or {}
        unknown = set(quarantine) - set(T.CANONICAL)
        if unknown:
            raise DataError(f"unknown quarantine tables: {sorted(unknown)}")
        clean = {"interactions": S.conform(dataset.interactions, S.INTERACTIONS_SCHEMA),
                 "items": S.conform(dataset.items, S.ITEMS_SCHEMA)}
        bad = {t: quarantine.get(t, pl.DataFrame(schema=schema))
               for t, schema in T.CANONICAL.items()}
        snap, batch = snapshot_id(dataset), uuid.uuid4().hex
        now = datetime.now(UTC)
        with self._connect() as con:
            con.begin()
            try:
                if not con.execute("SELECT 1 FROM snapshots WHERE snapshot_id = ?",
                                   [snap]).fetchall():
                    self._write_snapshot(con, snap, dataset, clean, now)
                for table, schema in T.CANONICAL.items():
                    self._write_batch(con, table, schema, batch, clean[table], bad[table])
                con.execute(
                    "INSERT INTO load_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [batch, snap, dataset.name, now, clean["interactions"].height,
                     clean["items"].height, bad["interactions"].height, bad["items"].height])
                con.commit()
            except BaseException:
                con.rollback()
                raise
        logger.info("loaded batch %s of %s: snapshot %s", batch, dataset.name, snap)
        return snap

    def _write_snapshot(self, con: duckdb.DuckDBPyConnection, snap: str, dataset: Dataset,
                        clean: dict[str, pl.DataFrame], now: datetime) -> None:
        for table, frame in clean.items():
            ordered = canonical_order(frame).with_row_index(T.ROW_IDX)
            self._insert(con, f"clean_{table}", ordered, {T.SNAPSHOT_ID: snap})
        if dataset.users is not None:
            names = [c for c in dataset.users.columns if c != S.USER_ID]
            attributes = (pl.struct(names).struct.json_encode() if names else pl.lit("{}"))
            users = canonical_order(dataset.users.select(
                pl.col(S.USER_ID).cast(pl.String), attributes.alias(T.ATTRIBUTES)))
            self._insert(con, "clean_users", users.with_row_index(T.ROW_IDX),
                         {T.SNAPSHOT_ID: snap})
        con.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                    [snap, dataset.name, now, clean["interactions"].height,
                     clean["items"].height])

    def _write_batch(self, con: duckdb.DuckDBPyConnection, table: str,
                     schema: dict[str, pl.DataType], batch: str, clean: pl.DataFrame,
                     bad: pl.DataFrame) -> None:
        extra = {T.SOURCE_ROW: pl.Int64(), T.REASON: pl.String()}
        bad_rows = S.conform(bad, schema).hstack([
            bad[c].cast(dtype) if c in bad.columns
            else pl.Series(c, [None] * bad.height, dtype=dtype) for c, dtype in extra.items()])
        raw = pl.concat([clean.with_columns(pl.lit(False).alias(T.QUARANTINED)),
                         bad_rows.select(*schema, pl.lit(True).alias(T.QUARANTINED))])
        self._insert(con, f"raw_{table}", raw, {T.BATCH_ID: batch})
        self._insert(con, f"quarantine_{table}", bad_rows, {T.BATCH_ID: batch})

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame,
                constants: dict[str, str]) -> None:
        view = f"_src_{uuid.uuid4().hex}"
        con.register(view, frame.to_arrow())
        try:
            names = [*constants, *frame.columns]
            columns = ", ".join(T.quote(c) for c in names)
            values = ", ".join(["?"] * len(constants) + [T.quote(c) for c in frame.columns])
            con.execute(f"INSERT INTO {T.quote(table)} ({columns}) "
                        f"SELECT {values} FROM {T.quote(view)}", list(constants.values()))
        finally:
            con.unregister(view)

    def query(self, sql: str, params: Sequence[object] = ()) -> pl.DataFrame:
        """Run a read query with bound parameters and return a Polars frame (via Arrow).

        Args:
            sql: one SELECT statement, with ``?`` placeholders.
            params: the values bound to the placeholders.
        """
        with self._connect() as con:
            return pl.from_arrow(con.sql(sql, params=list(params)).to_arrow_table())

    def _require(self, snap: str) -> None:
        if self.query("SELECT 1 FROM snapshots WHERE snapshot_id = ?", [snap]).is_empty():
            raise DataError(f"{self.path}: unknown snapshot '{snap}'")

    def _clean(self, table: str, snap: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        self._require(snap)
        columns = ", ".join(T.quote(c) for c in schema)
        frame = self.query(f"SELECT {columns} FROM {T.quote('clean_' + table)} "
                           f"WHERE {T.quote(T.SNAPSHOT_ID)} = ? ORDER BY {T.quote(T.ROW_IDX)}",
                           [snap])
        return S.conform(frame, schema)

    def interactions(self, snap: str) -> pl.DataFrame:
        """Read the clean canonical interactions of snapshot ``snap``, in stored order.

        Args:
            snap: a snapshot id returned by ``load``.
        """
        return self._clean("interactions", snap, S.INTERACTIONS_SCHEMA)

    def items(self, snap: str) -> pl.DataFrame:
        """Read the clean canonical items of snapshot ``snap``, in stored order.

        Args:
            snap: a snapshot id returned by ``load``.
        """
        return self._clean("items", snap, S.ITEMS_SCHEMA)

    def users(self, snap: str) -> pl.DataFrame | None:
        """``user_id`` plus attribute columns of snapshot ``snap``; ``None`` when it had none.

        Args:
            snap: a snapshot id returned by ``load``.
        """
        self._require(snap)
        frame = self.query("SELECT user_id, attributes FROM clean_users WHERE snapshot_id = ? "
                           "ORDER BY row_idx", [snap])
        if frame.is_empty():
            return None
        lines = "\n".join(frame[T.ATTRIBUTES].to_list()).encode()
        return frame.select(S.USER_ID).hstack(pl.read_ndjson(io.BytesIO(lines)))

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
