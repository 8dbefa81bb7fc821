"""The ingestion flow: validate a dataset and load it into the warehouse, or append it."""

from __future__ import annotations

from prefect import flow

from flows.exclusive import exclusive
from tasks.ingest import Ingested, export_events, ingest


@flow(name="ingest")
@exclusive
def ingest_flow(data: str = "synthetic", data_docs: bool = True, append: bool = False
                ) -> Ingested:
    """Validate ``data`` and load its clean rows; returns the snapshot id and row counts.

    With ``append`` the rows are applied to the latest snapshot (the later row wins per key)
    and the interactions they add are exported for served models to fold in.
    """
    ingested = ingest(data, data_docs, append)
    if append:
        export_events(ingested.snapshot_id)
    return ingested
