from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from rich.table import Table

from recsys_core.data.dataset import Dataset
from recsys_core.evaluation import REPORT_KEYS, build_report, evaluate, metrics_table, render_text
from recsys_core.evaluation.metrics import metric_keys


@pytest.fixture
def evaluation(data_factory, fixed_scorer):
    rng = np.random.default_rng(0)
    train = data_factory(6, 8, [(u, u % 4) for u in range(6)] + [(0, 5)])
    test = data_factory(6, 8, [(u, (u + 1) % 8) for u in range(6)])
    scorers = {name: fixed_scorer(rng.random((6, 8)), train)
               for name in ("fused", "als", "most_pop")}
    return evaluate(scorers, train, test, k=3)


def make_report(evaluation, registered=None):
    return build_report("synthetic", "stratified", 3, evaluation, {"als": 0.7, "most_pop": 0.3},
                        {"train": 1.23456, "evaluate": 0.5}, registered)


def test_report_has_exactly_the_design_keys(evaluation) -> None:
    report = make_report(evaluation, {"name": "recsys-hybrid", "version": 3})
    assert tuple(report) == REPORT_KEYS == (
        "dataset", "protocol", "k", "models", "segments", "fusion", "timings_s", "registered")
    assert list(report["models"]) == ["fused", "als", "most_pop"]
    assert all(tuple(v) == metric_keys(3) for v in report["models"].values())
    assert set(report["segments"]) == {"all", "cold_items", "cold_users", "long_tail"}
    assert report["fusion"] == {"weights": {"als": 0.7, "most_pop": 0.3}}
    assert report["timings_s"]["train"] == 1.235
    assert report["registered"] == {"name": "recsys-hybrid", "version": "3"}
    json.dumps(report, allow_nan=False)  # strict JSON: NaN became null


def test_unregistered_and_dataset_object(evaluation) -> None:
    dataset = Dataset("ml-100k", pl.DataFrame(), pl.DataFrame())
    report = build_report(dataset, "leave_last", 3, evaluation, None, {}, None)
    assert report["dataset"] == "ml-100k"
    assert report["registered"] == {"name": None, "version": None}
    assert report["fusion"] == {"weights": {}}


def test_empty_segment_metrics_are_null(data_factory, fixed_scorer) -> None:
    train = data_factory(2, 3, [(0, 0), (1, 1)])
    test = data_factory(2, 3, [(0, 1), (1, 0)])  # no cold item in test
    evaluation = evaluate({"fused": fixed_scorer(np.ones((2, 3)), train)}, train, test, k=3)
    assert evaluation.n_users["cold_items"] == 0
    report = make_report(evaluation)
    assert all(v is None for v in report["segments"]["cold_items"]["fused"].values())
    assert "-" in render_text(report)


def test_k_mismatch_raises(evaluation) -> None:
    with pytest.raises(ValueError, match="k=5"):
        build_report("synthetic", "stratified", 5, evaluation, None, {}, None)


def test_metrics_table_rows_and_columns(evaluation) -> None:
    report = make_report(evaluation)
    table = metrics_table(report)
    assert isinstance(table, Table)
    assert [c.header for c in table.columns] == ["model", *metric_keys(3)]
    assert table.row_count == 3
    assert metrics_table(report, "cold_users").row_count == 3


def test_render_text_is_plain(evaluation) -> None:
    text = render_text(make_report(evaluation, {"name": "recsys-hybrid", "version": "1"}))
    assert "fused" in text and "most_pop" in text and "ndcg@3" in text
    assert "segment long_tail" in text
    assert "recsys-hybrid v1" in text
    assert "\x1b[" not in text  # no ANSI escapes
    assert "[bold]" not in text
