"""Ingestion tasks: load, validate (Great Expectations), write the warehouse; export appends."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from data_checks.runner import validate_dataset
from recsys_core.config import get_settings
from recsys_core.data.loaders import read_dataset
from recsys_core.model.events import write_events
from recsys_core.warehouse.store import Warehouse
from tasks.common import IO_RETRIES, Result

INCREMENT_ROWS = {"items": (0, None)}
"""An increment may name no items (its interactions may all be with the snapshot's items)."""


class Ingested(Result):
    """A validated dataset in the warehouse.

    Args:
        snapshot_id: the snapshot its clean rows were loaded as.
        dataset: the dataset's name.
        validation: the validation summary (rows read, valid and quarantined per table).
        data_docs: the Data Docs index, when rendered.
    """

    snapshot_id: str
    dataset: str
    validation: dict[str, Any]
    data_docs: str | None


@task(**IO_RETRIES)
def ingest(data: str, data_docs: bool = False, append: bool = False) -> Ingested:
    """Load ``data``, quarantine bad rows, load (or append) the clean rows; returns snapshot id."""
    settings = get_settings()
    warehouse = Warehouse(settings.warehouse_path)
    base = warehouse.latest_snapshot() if append else None
    known = None if base is None else warehouse.items(base)["item_id"].to_list()
    result = validate_dataset(read_dataset(data), settings.quarantine_threshold,
                              data_docs=data_docs, known_item_ids=known,
                              row_bounds=None if base is None else INCREMENT_ROWS)
    result.raise_if_failed()
    snapshot_id = (warehouse.load(result.dataset, result.quarantine) if base is None
                   else warehouse.append(result.dataset, result.quarantine, base=base))
    summary = result.summary
    rows = [{"table": table, **{k: v for k, v in counts.items() if k != "failed_expectations"}}
            for table, counts in summary["tables"].items()]
    create_table_artifact(rows, key="ingest-summary", description=f"snapshot {snapshot_id}")
    for row in rows:
        get_run_logger().info("snapshot %s, %s: %d rows read, %d valid, %d quarantined",
                              snapshot_id, row["table"], row["rows_read"], row["rows_valid"],
                              row["rows_quarantined"])
    return Ingested(snapshot_id=snapshot_id, dataset=result.dataset.name, validation=summary,
                    data_docs=None if result.data_docs is None else str(result.data_docs))


@task(**IO_RETRIES)
def export_events(snapshot_id: str) -> str | None:
    """Export the interactions an append added, for served models; returns the file, if any."""
    settings = get_settings()
    parent, added = Warehouse(settings.warehouse_path).appended(snapshot_id)
    if parent is None:
        return None
    path = write_events(settings.events_dir, parent, snapshot_id, added)
    get_run_logger().info("%d interactions appended to %s exported to %s", added.height, parent,
                          path)
    return str(path)
