"""The sharded stages on a real Dask cluster (2 worker processes) give the local results."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from distributed import LocalCluster

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.embed.cache import EmbeddingCache
from recsys_core.fusion.weighted import FusionConfig
from recsys_core.lifecycle import promotion
from recsys_core.scoring import TrainOptions
from tests.lifecycle.builders import STRONG, K, build_run, unique_settings

SOURCES = {"als": STRONG["als"], "itemknn": {}, "text": {}}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return build_run(tmp_path_factory.mktemp("distributed"), n_interactions=2000)


@pytest.fixture
def on(monkeypatch, run, cluster):
    """``on("local")`` / ``on("dask")``: settings for one runner, small shards."""
    def use(runner: str) -> None:
        monkeypatch.setenv("RECSYS_HOME", str(run.settings.home))
        monkeypatch.setenv("RECSYS_TASK_RUNNER", runner)
        monkeypatch.setenv("RECSYS_DASK_ADDRESS", cluster)
        monkeypatch.setenv("RECSYS_SHARD_DOCUMENTS", "16")
        monkeypatch.setenv("RECSYS_SHARD_USERS", "20")
    return use


def test_embedding_shards_on_dask_equal_local(prefect_harness, run, on) -> None:
    from flows.embed import embed

    cache = EmbeddingCache(run.settings.warehouse_path)
    vectors = {}
    for runner in ("local", "dask"):
        on(runner)
        cache.clear()
        vectors[runner] = np.load(embed(str(run.store.folder), run.encoder))
        n_docs = len(set(run.store.documents()))
        assert cache.count() == n_docs > 3 * 16  # several shards, every one cached
    np.testing.assert_array_equal(vectors["dask"], vectors["local"])
    np.testing.assert_allclose(vectors["local"], np.load(run.embeddings), atol=1e-6)


def test_evaluation_shards_on_dask_equal_local(prefect_harness, run, on) -> None:
    from flows.evaluate import evaluate

    paths = {name: str(pipeline.train_source(run.store, name, params, "train",
                                             TrainOptions(seed=1), run.embeddings))
             for name, params in SOURCES.items()}
    fusion = FusionConfig(weights={"als": 1.0, "itemknn": 0.5, "text": 0.2})
    reports = {}
    for runner in ("local", "dask"):
        on(runner)
        reports[runner] = evaluate(str(run.store.folder), paths, {}, fusion, K, "synthetic",
                                   run.encoder, str(run.embeddings)).to_json()
    assert reports["dask"]["models"] == reports["local"]["models"]
    assert reports["dask"]["segments"] == reports["local"]["segments"]
    whole = pipeline.evaluate_run(run.store, paths, {}, fusion, K)
    assert reports["local"]["models"] == pipeline.report_run(
        whole, "synthetic", "stratified", K, fusion).to_json()["models"]


def test_batch_shards_on_dask_equal_local(prefect_harness, run, on, monkeypatch) -> None:
    from flows.batch import batch_flow

    on("local")
    settings = unique_settings()
    monkeypatch.setenv("RECSYS_MODEL_NAME", settings.model_name)
    settings = get_settings()
    run.register(run.train(STRONG), settings)
    promotion.challenge(settings)
    frames = {}
    for runner in ("local", "dask"):
        on(runner)
        result = batch_flow(k=3)
        frames[runner] = pl.read_parquet(result.parquet).drop("created_at")
        assert result.rows == result.rows_loaded == frames[runner].height
    assert frames["local"]["user_id"].n_unique() == len(run.store.vocabularies()[0]) > 2 * 20
    assert frames["dask"].equals(frames["local"])
