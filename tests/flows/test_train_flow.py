"""The training flow end to end on tiny synthetic data, under one Prefect test harness."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from flows.app.cli import app
from flows.train import train_flow
from recsys_core import workers
from recsys_core.config import get_settings
from recsys_core.evaluation.metrics import metric_keys
from recsys_core.evaluation.report import RunReport
from recsys_core.training import TrainingConfig
from recsys_core.warehouse.store import Warehouse
from tests.tiny_bert import build_tiny_model


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("flow-bert")))


@pytest.fixture(scope="module")
def trained(prefect_harness, tiny_encoder: str, tmp_path_factory: pytest.TempPathFactory):
    report_path = tmp_path_factory.mktemp("reports") / "r.json"
    report = train_flow(data="synthetic:3000", protocol="stratified", k=5, encoder=tiny_encoder,
                        trials=3, report_path=str(report_path))
    assert isinstance(report, RunReport)
    return report.to_json(), report_path


def test_report_has_design_keys_every_source_and_fused(trained) -> None:
    report, report_path = trained
    assert {"dataset", "protocol", "k", "models", "segments", "fusion", "timings_s",
            "registered"} <= set(report)
    expected = {"fused", *TrainingConfig().sources}
    assert set(report["models"]) == expected
    for values in report["models"].values():
        assert list(values) == list(metric_keys(5))
    assert json.loads(Path(report_path).read_text())["models"] == report["models"]
    assert list(json.loads(Path(report_path).read_text())) == [
        "dataset", "protocol", "k", "models", "segments", "fusion", "timings_s", "registered",
        "validation", "data", "links"]
    assert list(report["fusion"]) == ["weights", "normaliser", "missing", "vs_best_single"]
    assert list(report["registered"]) == ["name", "version", "run_id", "promoted",
                                          "challenger_ndcg", "champion_ndcg",
                                          "champion_version", "reason"]
    assert set(report["fusion"]["weights"]) == set(TrainingConfig().fused_sources)
    assert report["timings_s"]["embed"] > 0


def test_one_training_worker_trains_the_same_models_in_the_flows_process(
        trained, tiny_encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RECSYS_TRAIN_WORKERS=1: no worker pool, the trainings one after another, one result."""
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))  # nothing cached from the first run
    monkeypatch.setenv("RECSYS_TRAIN_WORKERS", "1")
    pools: list[int] = []
    monkeypatch.setattr(workers, "pool", lambda n: pools.append(n))  # would fail the flow
    report = train_flow(data="synthetic:3000", protocol="stratified", k=5, encoder=tiny_encoder,
                        trials=3, register_model=False).to_json()
    assert pools == []
    assert report["models"] == trained[0]["models"]
    assert report["fusion"]["weights"] == trained[0]["fusion"]["weights"]


def test_fused_beats_popularity_on_synthetic_tastes(trained) -> None:
    models = trained[0]["models"]
    assert models["fused"]["ndcg@5"] > models["mostpop"]["ndcg@5"]


def test_registered_pyfunc_loads_and_predicts(trained) -> None:
    registered = trained[0]["registered"]
    assert registered["name"] == "recsys-hybrid"
    assert registered["promoted"] is True  # the first version becomes champion
    model = mlflow.pyfunc.load_model(f"models:/recsys-hybrid/{registered['version']}")
    out = model.predict(pd.DataFrame({"user_id": ["u1", "nobody"], "k": [3, 2]}))
    assert list(out["user_id"]) == ["u1"] * 3 + ["nobody"] * 2
    assert list(out["rank"]) == [1, 2, 3, 1, 2]
    assert not out[out.user_id == "u1"]["fallback"].any()
    assert out[out.user_id == "nobody"]["fallback"].all()


def test_registered_model_answers_text_queries_with_its_encoder(trained) -> None:
    registered = trained[0]["registered"]
    model = mlflow.pyfunc.load_model(f"models:/recsys-hybrid/{registered['version']}")
    out = model.predict(pd.DataFrame({"query": ["wireless headphones"], "k": [4]}))
    assert len(out) == 4 and not out["fallback"].any()
    assert out["score"].is_monotonic_decreasing


def test_cli_reports_bad_data_dir_in_one_line(prefect_harness, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--no-register"])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("error:") and str(tmp_path) in message


def test_registration_stores_every_users_top_k_with_the_version(trained) -> None:
    registered = trained[0]["registered"]
    name, version = registered["name"], registered["version"]
    settings = get_settings()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    lists, model = pyfunc.served.top_k, pyfunc.model
    assert lists is not None and len(lists) == len(model.users)
    assert lists.k == min(settings.top_k, len(model.items))
    table = Warehouse(settings.warehouse_path).query(
        "SELECT user_id, rank, item_id, score FROM recommendations WHERE model_name = ? AND "
        "model_version = ? ORDER BY user_id, rank", [name, version])
    assert table.height == lists.frame().height > len(model.users)
    first = table.filter(pl.col("user_id") == "u1")
    expected = model.recommend("u1", first.height)
    assert first["item_id"].to_list() == [r.item_id for r in expected]
    assert first["rank"].to_list() == list(range(1, first.height + 1))
