"""DuckDB warehouse: batch loads, appends, content-addressed snapshots and feature SQL."""

from recsys_core.warehouse.features import DOCUMENT, FeatureConfig, Features, build_features
from recsys_core.warehouse.snapshot import snapshot_id
from recsys_core.warehouse.store import Warehouse

__all__ = ["DOCUMENT", "FeatureConfig", "Features", "Warehouse", "build_features",
           "snapshot_id"]
