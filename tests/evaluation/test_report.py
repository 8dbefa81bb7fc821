from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from rich.table import Table

from recsys_core.data.dataset import Dataset
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.evaluation.metrics import metric_keys
from recsys_core.evaluation.report import (
    REPORT_KEYS,
    BestSingle,
    DataSection,
    FusionSection,
    GatedVersion,
    Registered,
    RunReport,
    build_report,
    metrics_table,
    render_markdown,
    render_text,
    run_report,
)


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
    report = make_report(evaluation, {"name": "recsys-hybrid", "version": 3}).to_json()
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
    report = build_report(dataset, "leave_last", 3, evaluation, None, {}, None).to_json()
    assert report["dataset"] == "ml-100k"
    assert report["registered"] == {"name": None, "version": None}
    assert report["fusion"] == {"weights": {}}


def test_empty_segment_metrics_are_null(data_factory, fixed_scorer) -> None:
    train = data_factory(2, 3, [(0, 0), (1, 1)])
    test = data_factory(2, 3, [(0, 1), (1, 0)])  # no cold item in test
    evaluation = evaluate({"fused": fixed_scorer(np.ones((2, 3)), train)}, train, test, k=3)
    assert evaluation.n_users["cold_items"] == 0
    report = make_report(evaluation)
    assert all(v is None for v in report.to_json()["segments"]["cold_items"]["fused"].values())
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


GATED = GatedVersion(name="recsys-hybrid", version="2", run_id="abc", promoted=False,
                     challenger_ndcg=0.25, champion_ndcg=None, champion_version=None,
                     reason="no champion yet")
DATA = DataSection(snapshot_id="s1", users=6, items=8, rows={"train": 7, "test": 6})
VALIDATION = {"success": True, "tables": {"interactions": {
    "rows_read": 13, "rows_valid": 13, "rows_quarantined": 0}}}


def test_a_training_run_s_report_keeps_the_json_key_order(evaluation) -> None:
    fusion = FusionSection(weights={"als": 0.7}, normaliser="zscore", missing="min",
                           vs_best_single=BestSingle(source="als", mean_diff=0.1, ci_low=0.0,
                                                     ci_high=0.2, p_bootstrap=0.04,
                                                     p_wilcoxon=float("nan")))
    evaluated = build_report("synthetic", "stratified", 3, evaluation, fusion, {}, None)
    report = run_report(evaluated, {"ingest": 1.5}, VALIDATION, DATA, GATED, None,
                        "runs:/abc", "sqlite:///x.db").to_json()
    assert list(report) == [*REPORT_KEYS, "validation", "data", "links"]
    assert list(report["fusion"]) == ["weights", "normaliser", "missing", "vs_best_single"]
    read = fusion.model_copy(update={"readouts": {"user_encoder": 16.0}})
    with_readouts = run_report(build_report("synthetic", "stratified", 3, evaluation, read, {},
                                            None), {}, VALIDATION, DATA, GATED, None, None, "u")
    assert with_readouts.to_json()["fusion"]["readouts"] == {"user_encoder": 16.0}
    assert "Readouts chosen on the validation carves: user_encoder 16." in render_markdown(
        with_readouts)
    assert "readouts: user_encoder=16" in render_text(with_readouts)
    assert list(report["fusion"]["vs_best_single"]) == [
        "source", "mean_diff", "ci_low", "ci_high", "p_bootstrap", "p_wilcoxon"]
    assert list(report["registered"]) == ["name", "version", "run_id", "promoted",
                                          "challenger_ndcg", "champion_ndcg",
                                          "champion_version", "reason"]
    assert report["data"] == {"snapshot_id": "s1", "users": 6, "items": 8,
                              "rows": {"train": 7, "test": 6}}
    assert report["links"] == {"data_docs": None, "mlflow_run": "runs:/abc",
                               "tracking_uri": "sqlite:///x.db"}
    assert report["timings_s"] == {"ingest": 1.5} and report["validation"] == VALIDATION
    assert "NaN" in json.dumps(report)  # as json.dumps of the dict always wrote it
    assert evaluated.to_json()["timings_s"] == {}  # the evaluation's report is left alone


def test_unregistered_run_keeps_null_registration(evaluation) -> None:
    evaluated = make_report(evaluation)
    report = run_report(evaluated, {}, VALIDATION, DATA, None, "/docs/index.html", None, "u")
    assert report.to_json()["registered"] == {"name": None, "version": None}
    assert type(report.registered) is Registered
    assert report.to_json()["links"]["mlflow_run"] is None


@pytest.mark.parametrize("registered", [None, GATED])
def test_report_json_round_trips(evaluation, registered) -> None:
    report = run_report(make_report(evaluation), {"ingest": 1.0}, VALIDATION, DATA, registered,
                        None, None, "u")
    for one in (report, make_report(evaluation)):
        again = RunReport.model_validate(json.loads(json.dumps(one.to_json())))
        assert again == one and again.to_json() == one.to_json()
    assert type(RunReport.model_validate(report.to_json()).registered) is type(report.registered)


def test_score_reads_all_users_metric(evaluation) -> None:
    report = make_report(evaluation)
    assert report.score("als") == report.models["als"]["ndcg@3"]
    assert report.score("fused", "hit") == report.models["fused"]["hit@3"]


def test_markdown_needs_a_training_run_s_report(evaluation) -> None:
    with pytest.raises(ValueError, match="run_report"):
        render_markdown(make_report(evaluation))
    text = render_markdown(run_report(make_report(evaluation), {"ingest": 1.0}, VALIDATION,
                                      DATA, GATED, "/docs/index.html", "runs:/abc", "u"))
    assert "Snapshot `s1`: 6 users, 8 items" in text and "| interactions | 13 | 13 | 0 |" in text
    assert "Version **2** of `recsys-hybrid`: not promoted. no champion yet" in text
    assert "[Data Docs](file:///docs/index.html)" in text and "| ingest | 1.00 |" in text


def test_a_report_of_several_cutoffs_keeps_the_main_keys_first(data_factory, fixed_scorer
                                                               ) -> None:
    train = data_factory(6, 8, [(u, u % 4) for u in range(6)])
    test = data_factory(6, 8, [(u, (u + 1) % 8) for u in range(6)])
    scorer = fixed_scorer(np.random.default_rng(1).random((6, 8)), train)
    evaluation = evaluate({"fused": scorer, "als": scorer}, train, test, k=[3, 5])
    report = build_report("synthetic", "given", 3, evaluation, {"als": 1.0}, {}, None)
    out = report.to_json()
    assert tuple(out) == REPORT_KEYS and out["k"] == 3
    assert tuple(out["models"]["fused"]) == (*metric_keys(3), *metric_keys(5))
    assert tuple(out["segments"]["cold_users"]["als"]) == (*metric_keys(3), *metric_keys(5))
    assert report.cutoffs == (3, 5) and report.score("als") == out["models"]["als"]["ndcg@3"]
    assert RunReport.model_validate(json.loads(json.dumps(out))).cutoffs == (3, 5)
    assert [c.header for c in metrics_table(report, k=5).columns] == ["model", *metric_keys(5)]
    text = render_text(report)
    assert "synthetic / given @ 3" in text and "synthetic / given @ 5" in text
    assert "given @ 5 - segment long_tail" in text and "ndcg@5" in text


def test_a_single_cutoff_report_has_one_cutoff(evaluation) -> None:
    assert make_report(evaluation).cutoffs == (3,)
