from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest

from data_checks.runner import validate_dataset
from recsys_core import pipeline
from recsys_core.data import schema as S
from recsys_core.data.synthetic import SyntheticConfig, generate
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.fusion.search import SPACES, tune_source, validation_ndcg, validation_rows
from recsys_core.runstore import RunStore
from recsys_core.scoring import TrainOptions
from recsys_core.training import make_source
from recsys_core.warehouse.features import build_features
from recsys_core.warehouse.store import Warehouse

SOURCES = {"als": {"factors": 8, "iterations": 5}, "itemknn": {}, "ease": {}, "mostpop": {}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    data = generate(SyntheticConfig(n_users=150, n_items=90, n_interactions=3000, seed=5))
    result = validate_dataset(data, 0.2)
    warehouse = Warehouse(tmp_path_factory.mktemp("wh") / "w.duckdb")
    features = build_features(warehouse, warehouse.load(result.dataset, result.quarantine))
    return RunStore.prepare(features, "stratified", 42, tmp_path_factory.mktemp("runs"),
                            carves=2)


def test_search_starts_from_the_given_params_and_never_scores_below_them(store) -> None:
    fit, valid = store.data("fit"), store.data("valid")
    options = TrainOptions(seed=1)
    given = {"l2": 5000.0}
    result = tune_source(lambda p: make_source("ease", p), "ease", given, fit, valid, options,
                         trials=4, k=5)
    rows = validation_rows(valid, 3000, options.seed)
    baseline = validation_ndcg(make_source("ease", given).train(fit), fit, valid, rows, 5)
    assert result.trials == 4
    assert result.ndcg >= baseline
    assert 10.0 <= result.params["l2"] <= 5000.0
    again = validation_ndcg(make_source("ease", result.params).train(fit), fit, valid, rows, 5)
    assert result.ndcg == pytest.approx(again, abs=1e-9)  # the reported score is the params'


def test_search_keeps_unsearched_fields_and_rejects_unknown_sources(store) -> None:
    fit, valid = store.data("fit"), store.data("valid")
    result = tune_source(lambda p: make_source("als", p), "als", {"iterations": 3}, fit, valid,
                         TrainOptions(seed=1), trials=2, k=5)
    assert result.params["iterations"] == 3
    assert {"iterations"} <= set(result.params) <= {"iterations", "factors", "regularization",
                                                     "alpha"}
    with pytest.raises(ValueError, match="no search space"):
        tune_source(lambda p: make_source("mostpop", p), "mostpop", {}, fit, valid,
                    TrainOptions(), trials=2)
    with pytest.raises(ValueError, match="trials"):
        tune_source(lambda p: make_source("als", p), "als", {}, fit, valid, TrainOptions(),
                    trials=0)


def _tune(store: RunStore) -> tuple[dict, dict, float]:
    options = TrainOptions(seed=3)
    params = pipeline.tune_sources(store, SOURCES, options, trials=3, k=5)
    fused = [n for n in params if n != "mostpop"]
    carves = [{n: pipeline.train_source(store, n, params[n], fit, options) for n in fused}
              for fit, _ in store.carves()]
    tuned = pipeline.tune_fusion(store, carves, 5, trials=6, seed=3)
    assert len(tuned.per_carve) == 2
    return params, tuned.config.model_dump(), tuned.ndcg


def test_tuning_on_every_carve_never_reads_the_test_part(store, tmp_path) -> None:
    before = _tune(store)
    altered = RunStore(shutil.copytree(store.folder, tmp_path / "altered"))
    test = altered.frame("test")
    shuffled = test.with_columns(pl.Series(S.ITEM_ID, np.random.default_rng(0).permutation(
        test[S.ITEM_ID].to_numpy())))
    shuffled.write_parquet(altered.folder / "test.parquet")
    assert not altered.frame("test").equals(store.frame("test"))
    assert _tune(altered) == before
    assert set(before[0]) == set(SOURCES) and before[0]["mostpop"] == {}
    assert set(SPACES) >= {n for n in before[0] if before[0][n] != SOURCES[n]}


def test_same_seed_same_metrics(store) -> None:
    def metrics(seed: int) -> dict:
        options = TrainOptions(seed=seed)
        scorers = {n: make_source(n, p).train(store.data("train"), options)
                   for n, p in SOURCES.items()}
        return evaluate(scorers, store.data("train"), store.data("test"), k=5).metrics

    first = metrics(7)
    assert metrics(7) == first
    assert metrics(8)["als"] != first["als"]


def test_cold_item_validation_searches_nothing(store, tmp_path, monkeypatch) -> None:
    cold = RunStore(shutil.copytree(store.folder, tmp_path / "cold"))
    fit, valid = cold.frame("fit"), cold.frame("valid")
    fit.filter(~pl.col(S.ITEM_ID).is_in(valid[S.ITEM_ID].implode())).write_parquet(
        cold.folder / "fit.parquet")
    def no_search(*args, **kwargs):
        raise AssertionError("searched although no validation item is warm")

    monkeypatch.setattr(pipeline, "tune_source", no_search)
    assert pipeline.tune_sources(cold, SOURCES, TrainOptions(), trials=3, k=5) == SOURCES
    with pytest.raises(AssertionError, match="searched"):
        pipeline.tune_sources(store, SOURCES, TrainOptions(), trials=3, k=5)


def test_carves_validate_on_other_users_items_and_never_on_test(store) -> None:
    def pairs(part: str) -> set[tuple[str, str]]:
        frame = store.frame(part)
        return set(zip(frame[S.USER_ID].to_list(), frame[S.ITEM_ID].to_list(), strict=True))

    train, test = pairs("train"), pairs("test")
    for fit, valid in store.carves():
        assert pairs(fit) | pairs(valid) == train and not pairs(fit) & pairs(valid)
        assert not pairs(valid) & test
    assert pairs("valid") != pairs("valid2")
