"""Warehouse table definitions, derived from the canonical schema, and identifier quoting."""

from __future__ import annotations

import polars as pl

from recsys_core.data import schema as S

BATCH_ID = "batch_id"
SNAPSHOT_ID = "snapshot_id"
ROW_IDX = "row_idx"
SOURCE_ROW = "_row"
REASON = "reason"
QUARANTINED = "quarantined"
ATTRIBUTES = "attributes"
PARENT_ID = "parent_id"
ERASED_USERS = "erased_users"
"""SHA-256 of each erased user id: later loads drop their rows (``warehouse.erased``)."""
ERASURES = "erasures"
"""The erasure audit: one row per request, counts per place, no user ids."""
CANONICAL = {"interactions": S.INTERACTIONS_SCHEMA, "items": S.ITEMS_SCHEMA}

_SQL_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR", pl.Float64: "DOUBLE", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN",
}


def quote(identifier: str) -> str:
    """Quote ``identifier`` for DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'


# Columns added after the first release (kept nullable so older files can gain them).
_SNAPSHOT_ADDED = (f"{quote(PARENT_ID)} VARCHAR", f"{quote(BATCH_ID)} VARCHAR")
_BATCH_ADDED = (f"{quote(PARENT_ID)} VARCHAR", "n_duplicate_interactions BIGINT",
                "n_duplicate_items BIGINT", "n_replaced_interactions BIGINT",
                "n_replaced_items BIGINT")
_INTERACTIONS_ADDED = (f"{quote(S.SPLIT)} VARCHAR",)


def sql_type(dtype: pl.DataType) -> str:
    """Return the DuckDB type for a canonical Polars dtype."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        return sql_type(inner if isinstance(inner, pl.DataType) else inner()) + "[]"
    return _SQL_TYPES[type(dtype)]


def _columns(schema: dict[str, pl.DataType]) -> list[str]:
    return [f"{quote(name)} {sql_type(dtype)}" for name, dtype in schema.items()]


def _table(name: str, columns: list[str]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {quote(name)} ({', '.join(columns)})"


def ddl() -> list[str]:
    """Return the statements that create every warehouse table (when missing).

    ``CREATE TABLE IF NOT EXISTS`` for each table, then ``ALTER TABLE ... ADD COLUMN IF NOT
    EXISTS`` for the columns added later, so an older warehouse file gains them.
    """
    statements = [
        _table("snapshots", [f"{quote(SNAPSHOT_ID)} VARCHAR PRIMARY KEY",
                             "dataset VARCHAR NOT NULL", "created_at TIMESTAMPTZ NOT NULL",
                             "n_interactions BIGINT NOT NULL", "n_items BIGINT NOT NULL",
                             *_SNAPSHOT_ADDED]),
        _table("load_batches", [f"{quote(BATCH_ID)} VARCHAR PRIMARY KEY",
                                f"{quote(SNAPSHOT_ID)} VARCHAR NOT NULL",
                                "dataset VARCHAR NOT NULL", "loaded_at TIMESTAMPTZ NOT NULL",
                                "n_clean_interactions BIGINT NOT NULL",
                                "n_clean_items BIGINT NOT NULL",
                                "n_quarantined_interactions BIGINT NOT NULL",
                                "n_quarantined_items BIGINT NOT NULL", *_BATCH_ADDED]),
        _table("clean_users", [f"{quote(SNAPSHOT_ID)} VARCHAR NOT NULL",
                               f"{quote(ROW_IDX)} BIGINT NOT NULL",
                               f"{quote(S.USER_ID)} VARCHAR", f"{quote(ATTRIBUTES)} VARCHAR"]),
        _table(ERASED_USERS, ["user_hash VARCHAR PRIMARY KEY"]),
        _table(ERASURES, ["audit_id VARCHAR PRIMARY KEY", "requested_at TIMESTAMPTZ NOT NULL",
                          "finished_at TIMESTAMPTZ", "n_users BIGINT NOT NULL",
                          "reason VARCHAR", "removed VARCHAR", "model_version VARCHAR"]),
    ]
    for table, schema in CANONICAL.items():
        columns = _columns(schema)
        statements += [
            _table(f"raw_{table}", [f"{quote(BATCH_ID)} VARCHAR NOT NULL", *columns,
                                    f"{quote(QUARANTINED)} BOOLEAN NOT NULL"]),
            _table(f"clean_{table}", [f"{quote(SNAPSHOT_ID)} VARCHAR NOT NULL",
                                      f"{quote(ROW_IDX)} BIGINT NOT NULL", *columns]),
            _table(f"quarantine_{table}", [f"{quote(BATCH_ID)} VARCHAR NOT NULL", *columns,
                                           f"{quote(SOURCE_ROW)} BIGINT",
                                           f"{quote(REASON)} VARCHAR"]),
        ]
    added_columns = [("snapshots", _SNAPSHOT_ADDED), ("load_batches", _BATCH_ADDED)]
    added_columns += [(f"{kind}_interactions", _INTERACTIONS_ADDED)
                      for kind in ("raw", "clean", "quarantine")]
    for table, added in added_columns:
        statements += [f"ALTER TABLE {quote(table)} ADD COLUMN IF NOT EXISTS {column}"
                       for column in added]
    return statements


def insert_row(table: str, values: dict[str, object]) -> tuple[str, list[object]]:
    """Return an ``INSERT`` of one row naming its columns, and the values to bind.

    Args:
        table: the table.
        values: column -> value.
    """
    columns = ", ".join(quote(c) for c in values)
    marks = ", ".join("?" for _ in values)
    return f"INSERT INTO {quote(table)} ({columns}) VALUES ({marks})", list(values.values())
