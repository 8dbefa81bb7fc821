"""The ingestion flow: validate a dataset and load it into the warehouse."""

from __future__ import annotations

from prefect import flow

from flows.exclusive import exclusive
from tasks.ingest import Ingested, ingest


@flow(name="ingest")
@exclusive
def ingest_flow(data: str = "synthetic", data_docs: bool = True) -> Ingested:
    """Validate ``data`` and load its clean rows; returns the snapshot id and row counts."""
    return ingest(data, data_docs)
