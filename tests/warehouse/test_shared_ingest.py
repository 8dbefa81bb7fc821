"""Every shared dataset loads, validates clean and reaches the warehouse with README counts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from data_checks import validate_dataset
from recsys_core.data import schema as S
from recsys_core.data.loaders import load_dataset
from recsys_core.warehouse import Warehouse, build_features

# name -> (interactions, users, items): the counts in each dataset's README.txt.
SHARED = {
    "ml-latest-small": (100_836, 610, 9_742),
    "amazon-scientific": (59_427, 8_442, 4_385),
    "lastfm-2k": (92_834, 1_892, 17_632),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return Warehouse(tmp_path_factory.mktemp("shared") / "wh.duckdb")


@pytest.mark.parametrize("name", list(SHARED))
def test_shared_dataset_ingests_with_readme_counts(shared_data: Path, warehouse: Warehouse,
                                                   name: str) -> None:
    n_interactions, n_users, n_items = SHARED[name]
    data = load_dataset(shared_data / name)
    start = time.perf_counter()
    result = validate_dataset(data, threshold=0.0)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"validation took {elapsed:.1f}s"
    result.raise_if_failed()
    tables = result.summary["tables"]
    assert tables["interactions"]["rows_read"] == n_interactions
    assert tables["items"]["rows_read"] == n_items
    assert tables["interactions"]["rows_quarantined"] == tables["items"]["rows_quarantined"] == 0
    snap = warehouse.load(result.dataset, result.quarantine)
    inter = warehouse.interactions(snap)
    assert inter.height == n_interactions
    assert inter[S.USER_ID].n_unique() == n_users
    assert warehouse.items(snap).height == n_items
    features = build_features(warehouse, snap)
    assert len(features.user_vocab) == n_users and len(features.item_vocab) == n_items
    assert features.user_stats["n_interactions"].sum() == n_interactions
    assert features.item_stats["n_interactions"].sum() == n_interactions
    assert features.interactions[S.WEIGHT].min() > 0
