"""DuckDB warehouse: batch loads, content-addressed snapshots and feature SQL."""

from recsys_core.warehouse.features import DOCUMENT, Features, build_features
from recsys_core.warehouse.snapshot import snapshot_id
from recsys_core.warehouse.store import Warehouse

__all__ = ["DOCUMENT", "Features", "Warehouse", "build_features", "snapshot_id"]
