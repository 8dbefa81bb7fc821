"""The evaluation stage: the cold_items protocol's second view, whole and in user shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys_core import pipeline
from recsys_core.fusion.weighted import FusionConfig
from recsys_core.runstore import RunStore
from recsys_core.scoring import TrainOptions

SOURCES = {"als": {"factors": 8, "iterations": 3}, "mostpop": {}}


@pytest.mark.parametrize("protocol", ["stratified", "cold_items"])
def test_cold_candidates_only_under_cold_items_and_shards_agree(features, tmp_path, protocol
                                                                ) -> None:
    store = RunStore.prepare(features, protocol, 42, tmp_path)
    paths = {name: pipeline.train_source(store, name, params, "train", TrainOptions(seed=1))
             for name, params in SOURCES.items()}
    fusion = FusionConfig(weights={"als": 1.0, "mostpop": 0.5})
    whole = pipeline.evaluate_run(store, paths, {}, fusion, 5).evaluation
    assert ("cold_candidates" in whole.segments) == (protocol == "cold_items")
    n = pipeline.evaluation_users(store)
    shards = [pipeline.rank_test_users(store, paths, {}, fusion, 5, start, min(start + 17, n))
              for start in range(0, n, 17)]
    sharded = pipeline.evaluate_run(store, paths, {}, fusion, 5, ranked=shards).evaluation
    assert json.dumps(sharded.segments) == json.dumps(whole.segments)  # NaN-aware
    if protocol == "cold_items":  # every test item is cold: the two views see the same users
        assert whole.n_users["cold_candidates"] == whole.n_users["all"]
        cold = whole.segments["cold_candidates"]
        # ALS cannot score a cold item; MostPop gives them all 0 and ties go to low indices
        assert cold["als"]["ndcg@5"] == 0.0
        assert cold["mostpop"]["hit@5"] > 0.0
        assert np.isclose(whole.segments["cold_items"]["mostpop"]["ndcg@5"], 0.0)
