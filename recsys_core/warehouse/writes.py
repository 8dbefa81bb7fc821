"""Writes inside a load transaction: snapshot tables and a batch's raw and quarantined rows.

Frames travel to DuckDB through Arrow; only quoted identifiers and bound values reach the SQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import duckdb
import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.keys import SUPERSEDED
from recsys_core.warehouse import tables as T
from recsys_core.warehouse.snapshot import canonical_order


def write_snapshot(con: duckdb.DuckDBPyConnection, snap: str, dataset: Dataset,
                   clean: dict[str, pl.DataFrame], now: datetime,
                   lineage: dict[str, str | None]) -> None:
    """Insert a new snapshot's clean tables (in canonical order) and its ``snapshots`` row.

    Args:
        con: the connection, inside the load's transaction.
        snap: the snapshot id.
        dataset: the snapshot's tables (for its name and users).
        clean: table -> conformed clean frame.
        now: the load time.
        lineage: ``parent_id`` and ``batch_id`` of the snapshot.
    """
    for table, frame in clean.items():
        insert(con, f"clean_{table}", canonical_order(frame).with_row_index(T.ROW_IDX),
               {T.SNAPSHOT_ID: snap})
    if dataset.users is not None:
        names = [c for c in dataset.users.columns if c != S.USER_ID]
        attributes = (pl.struct(names).struct.json_encode() if names else pl.lit("{}"))
        users = canonical_order(dataset.users.select(
            pl.col(S.USER_ID).cast(pl.String), attributes.alias(T.ATTRIBUTES)))
        insert(con, "clean_users", users.with_row_index(T.ROW_IDX), {T.SNAPSHOT_ID: snap})
    con.execute(*T.insert_row("snapshots", {
        T.SNAPSHOT_ID: snap, "dataset": dataset.name, "created_at": now,
        "n_interactions": clean["interactions"].height, "n_items": clean["items"].height,
        **lineage}))


def write_batch(con: duckdb.DuckDBPyConnection, table: str, schema: dict[str, pl.DataType],
                batch: str, clean: pl.DataFrame, bad: pl.DataFrame,
                replaced: pl.DataFrame) -> None:
    """Insert a batch's rows of one table into ``raw_<table>`` and ``quarantine_<table>``.

    Args:
        con: the connection, inside the load's transaction.
        table: ``interactions`` or ``items``.
        schema: the table's canonical schema.
        batch: the batch id.
        clean: the batch's clean rows (conformed).
        bad: the batch's quarantined rows (canonical columns, ``_row``, ``reason``).
        replaced: the base snapshot's rows this batch superseded (conformed): quarantined
            with reason ``superseded`` and a null ``_row``, not raw rows of this batch.
    """
    extra = {T.SOURCE_ROW: pl.Int64(), T.REASON: pl.String()}
    bad_rows = S.conform(bad, schema).hstack([
        bad[c].cast(dtype) if c in bad.columns
        else pl.Series(c, [None] * bad.height, dtype=dtype) for c, dtype in extra.items()])
    raw = pl.concat([clean.with_columns(pl.lit(False).alias(T.QUARANTINED)),
                     bad_rows.select(*schema, pl.lit(True).alias(T.QUARANTINED))])
    replaced_rows = replaced.with_columns(pl.lit(None, dtype=pl.Int64).alias(T.SOURCE_ROW),
                                          pl.lit(SUPERSEDED).alias(T.REASON))
    insert(con, f"raw_{table}", raw, {T.BATCH_ID: batch})
    insert(con, f"quarantine_{table}", pl.concat([bad_rows, replaced_rows]),
           {T.BATCH_ID: batch})


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame,
           constants: dict[str, str]) -> None:
    """Insert ``frame`` into ``table``, with constant columns (bound values) added.

    Args:
        con: the connection.
        table: the target table.
        frame: rows whose columns are named as the table's.
        constants: column -> value, the same for every row (``batch_id``, ``snapshot_id``).
    """
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
