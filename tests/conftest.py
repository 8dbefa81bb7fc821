"""Shared fixtures: an isolated RECSYS_HOME, offline Hugging Face, quiet Prefect."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RECSYS_HOME", tempfile.mkdtemp(prefix="recsys-test-"))

from flows.app.env import apply_defaults  # noqa: E402  (needs RECSYS_HOME first)

apply_defaults()

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this machine has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """Features of a small validated synthetic dataset (120 users, 80 items) in a warehouse."""
    from data_checks.runner import validate_dataset
    from recsys_core.data.synthetic import SyntheticConfig, generate
    from recsys_core.warehouse.features import build_features
    from recsys_core.warehouse.store import Warehouse

    data = generate(SyntheticConfig(n_users=120, n_items=80, n_interactions=2400, seed=3))
    result = validate_dataset(data, 0.2)
    warehouse = Warehouse(tmp_path_factory.mktemp("wh") / "w.duckdb")
    return build_features(warehouse, warehouse.load(result.dataset, result.quarantine))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """(store, embeddings path): a leave_last run of 60 users and 40 items, with 2 carves and
    random 8-d item embeddings, for trainings of the deep sources."""
    import numpy as np

    from data_checks.runner import validate_dataset
    from recsys_core.data.synthetic import SyntheticConfig, generate
    from recsys_core.runstore import RunStore
    from recsys_core.warehouse.features import build_features
    from recsys_core.warehouse.store import Warehouse

    data = generate(SyntheticConfig(n_users=60, n_items=40, n_interactions=900, seed=5))
    result = validate_dataset(data, 0.2)
    warehouse = Warehouse(tmp_path_factory.mktemp("wh") / "w.duckdb")
    features = build_features(warehouse, warehouse.load(result.dataset, result.quarantine))
    store = RunStore.prepare(features, "leave_last", 42, tmp_path_factory.mktemp("runs"), 2)
    vectors = np.random.default_rng(0).normal(size=(len(store.vocabularies()[1]), 8))
    return store, str(store.save_embeddings(vectors.astype(np.float32), "random"))


@pytest.fixture(scope="module")
def promotion_run(tmp_path_factory):
    """A ``TrainedRun`` (tests/lifecycle/builders.py)."""
    from tests.lifecycle.builders import build_run

    return build_run(tmp_path_factory.mktemp("promotion"))


@pytest.fixture(scope="module")
def promotion_models(promotion_run):
    """(strong, weak): CF + text and popularity alone, trained and evaluated on that run."""
    from tests.lifecycle.builders import STRONG, WEAK

    strong, weak = promotion_run.train(STRONG), promotion_run.train(WEAK)
    ndcg = {name: m.evaluation.metrics["fused"]["ndcg@5"]
            for name, m in (("strong", strong), ("weak", weak))}
    assert ndcg["strong"] > ndcg["weak"] > 0  # CF + text beat popularity on synthetic tastes
    return strong, weak
