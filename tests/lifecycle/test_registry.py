"""Registry against the tests' sqlite MLflow store (RECSYS_HOME is a temp dir, see conftest)."""

from __future__ import annotations

import importlib.metadata
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

from recsys_core.config import Settings
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from recsys_core.lifecycle import registry
from recsys_core.lifecycle.registry import (
    CHALLENGER,
    CHAMPION,
    RegistrationError,
    alias_version,
    metric_key,
    promote,
    register,
    should_promote,
)
from recsys_core.model.hybrid import HybridRecommender
from tests.fusion.helpers import FixedScorer, make_data, random_pairs

N_USERS, N_ITEMS = 8, 15
TAGS = {"snapshot_id": "snap-1", "dataset": "synthetic", "protocol": "stratified",
        "git_commit": "abc123", "validation": "passed"}
REPORT = {"dataset": "synthetic", "protocol": "stratified", "k": 10,
          "models": {"fused": {"ndcg@10": 0.31, "precision@10": 0.12, "coverage@10": 0.5},
                     "ease": {"ndcg@10": 0.25, "precision@10": 0.1, "coverage@10": 0.4}}}


def unique_settings() -> Settings:
    return Settings(model_name=f"test-{uuid.uuid4().hex[:10]}")


def alias(mlc: MlflowClient, name: str, which: str) -> str | None:
    found = alias_version(mlc, name, which)
    return None if found is None else str(found.version)


def versions(mlc: MlflowClient, name: str) -> list[str]:
    return sorted(str(v.version) for v in mlc.search_model_versions(f"name='{name}'"))


@pytest.fixture(scope="module")
def model() -> HybridRecommender:
    data = make_data(N_USERS, N_ITEMS, random_pairs(N_USERS, N_ITEMS, 3, seed=1), titles=True)
    rng = np.random.default_rng(2)
    sources = {"a": FixedScorer(rng.normal(size=(N_USERS, N_ITEMS))),
               "b": FixedScorer(rng.normal(size=(N_USERS, N_ITEMS)))}
    fusion = WeightedFusion(FusionConfig(weights={"a": 0.6, "b": 0.4}), sources).train(data)
    return HybridRecommender(fusion, data)


@pytest.fixture(scope="module")
def model_dir(model: HybridRecommender, tmp_path_factory) -> Path:
    return model.save(tmp_path_factory.mktemp("model"), meta={"dataset": "synthetic"})


def do_register(model, model_dir, settings, tags=TAGS):
    params = {"fusion": model.fusion.config.model_dump(), "k": 10}
    return register(model, model_dir, REPORT, params, tags, settings)


@pytest.fixture(scope="module")
def two_versions(model, model_dir):
    """One registered model with two versions, registered in order."""
    settings = unique_settings()
    first = do_register(model, model_dir, settings)
    second = do_register(model, model_dir, settings, TAGS | {"snapshot_id": "snap-2"})
    return settings, first, second


def test_register_twice_makes_versions_with_challenger_on_latest(two_versions) -> None:
    settings, first, second = two_versions
    mlc = registry.client(settings)
    assert (first.version, second.version) == ("1", "2")
    assert first.name == second.name == settings.model_name
    assert first.run_id != second.run_id
    assert versions(mlc, settings.model_name) == ["1", "2"]
    assert alias(mlc, settings.model_name, CHALLENGER) == "2"
    assert alias(mlc, settings.model_name, CHAMPION) is None
    v1 = mlc.get_model_version(settings.model_name, "1")
    v2 = mlc.get_model_version(settings.model_name, "2")
    assert {k: v1.tags[k] for k in TAGS} == TAGS
    assert v2.tags["snapshot_id"] == "snap-2" and v1.run_id == first.run_id
    assert isinstance(first.version, str)


def test_run_holds_safe_metrics_params_tags_and_report(two_versions) -> None:
    settings, first, _ = two_versions
    mlc = registry.client(settings)
    run = mlc.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    expected = {f"{src}/{m.replace('@', '_at_')}": v
                for src, values in REPORT["models"].items() for m, v in values.items()}
    assert run.data.metrics == pytest.approx(expected)
    assert all("@" not in key for key in run.data.metrics)
    assert run.data.params["fusion.weights.a"] == "0.6"
    assert run.data.params["fusion.normaliser"] == "zscore"
    assert run.data.params["k"] == "10"
    assert {k: run.data.tags[k] for k in TAGS} == TAGS
    report = mlflow.artifacts.load_dict(f"runs:/{first.run_id}/report.json")
    assert report == REPORT


@pytest.mark.parametrize(("raw", "safe"), [
    ("fused/ndcg@10", "fused/ndcg_at_10"),
    ("text sim/hit@5", "text sim/hit_at_5"),
    ("als:v2/map@10", "als_v2/map_at_10"),
    ("ease (l2=500)/mrr@10", "ease _l2_500_/mrr_at_10"),
])
def test_metric_key(raw: str, safe: str) -> None:
    assert metric_key(raw) == safe


def test_pyfunc_from_registry_matches_recommender(two_versions, model) -> None:
    settings, _, second = two_versions
    registry.client(settings)
    loaded = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{second.version}")
    users = ["u0", "u3", "stranger", "u7"]
    ks = [5, 3, 4, 15]
    out = loaded.predict(pd.DataFrame({"user_id": users, "k": ks}))
    for user, k in zip(users, ks, strict=True):
        rows = out[out["user_id"] == user]
        expected = model.recommend(user, k)
        assert rows["item_id"].tolist() == [r.item_id for r in expected]
        assert rows["score"].tolist() == pytest.approx([r.score for r in expected])
        assert rows["fallback"].tolist() == [r.fallback for r in expected]
        assert rows["rank"].tolist() == list(range(1, len(expected) + 1))
    # k is optional in the served schema too
    default = loaded.predict(pd.DataFrame({"user_id": ["u1"]}))
    assert default["item_id"].tolist() == [r.item_id for r in model.recommend("u1", 10)]


@pytest.mark.parametrize(("challenger", "champion", "margin", "expected"), [
    (0.10, None, 0.0, True),     # no champion: promote
    (0.0, None, 0.5, True),
    (0.31, 0.30, 0.0, True),     # better
    (0.30, 0.30, 0.0, False),    # a tie is not better
    (0.29, 0.30, 0.0, False),    # worse
    (0.302, 0.30, 0.01, False),  # better, but within a 1% margin
    (0.304, 0.30, 0.01, True),   # better beyond the margin
    (0.01, 0.0, 0.05, True),     # zero champion: any improvement
    (0.0, 0.0, 0.05, False),
])
def test_should_promote(challenger, champion, margin, expected) -> None:
    assert should_promote(challenger, champion, margin) is expected


def test_promote_moves_champion_only_when_better(two_versions) -> None:
    settings, first, second = two_versions
    name = settings.model_name
    mlc = registry.client(settings)

    assert promote(mlc, name, first.version, challenger=0.30, champion=None) is True
    assert alias(mlc, name, CHAMPION) == "1"
    tags = mlc.get_model_version(name, "1").tags
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.champion_score"] == "none"
    assert float(tags["promotion.challenger_score"]) == pytest.approx(0.30)
    assert "previous_champion" not in tags

    assert promote(mlc, name, second.version, challenger=0.29, champion=0.30) is False
    assert alias(mlc, name, CHAMPION) == "1"
    tags = mlc.get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "refused"
    assert float(tags["promotion.champion_score"]) == pytest.approx(0.30)
    assert "previous_champion" not in tags

    assert promote(mlc, name, second.version, challenger=0.302, champion=0.30,
                   margin=0.01) is False
    assert alias(mlc, name, CHAMPION) == "1"

    assert promote(mlc, name, second.version, challenger=0.35, champion=0.30) is True
    assert alias(mlc, name, CHAMPION) == "2"
    tags = mlc.get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "promoted"
    assert tags["previous_champion"] == "1"
    assert alias(mlc, name, CHALLENGER) == "2"


def _unreachable(*args, **kwargs):
    raise MlflowException("API request to http://mlflow:5000 failed: connection refused\n"
                          "(traceback of the store)", error_code=TEMPORARILY_UNAVAILABLE)


@pytest.mark.parametrize(("target", "method", "step"), [
    (LocalArtifactRepository, "log_artifacts", "logging the model's artifacts"),
    (SqlAlchemyStore, "create_model_version", "creating the version"),
    (SqlAlchemyStore, "set_registered_model_alias", "setting the challenger alias"),
])
def test_store_failing_at_registration_leaves_no_version_and_no_alias_moved(
        model, model_dir, monkeypatch, target, method: str, step: str) -> None:
    settings = unique_settings()
    name = settings.model_name
    good = do_register(model, model_dir, settings)
    mlc = registry.client(settings)
    mlc.set_registered_model_alias(name, CHAMPION, good.version)
    snapshot = f"fail-{uuid.uuid4().hex[:8]}"
    with monkeypatch.context() as patch:
        patch.setattr(target, method, _unreachable)
        with pytest.raises(RegistrationError) as failed:
            do_register(model, model_dir, settings, TAGS | {"snapshot_id": snapshot})
    message = str(failed.value)
    assert "\n" not in message and step in message and "connection refused" in message
    assert message.endswith("no version was added and no alias moved")
    assert failed.value.error_code == "TEMPORARILY_UNAVAILABLE"  # the task retries it
    assert versions(mlc, name) == [good.version]
    assert alias(mlc, name, CHALLENGER) == alias(mlc, name, CHAMPION) == good.version
    runs = mlc.search_runs([mlflow.get_experiment_by_name(registry.EXPERIMENT).experiment_id],
                           filter_string=f"tags.snapshot_id = '{snapshot}'")
    assert [run.info.status for run in runs] == ["FAILED"]
    assert mlflow.active_run() is None

    again = do_register(model, model_dir, settings, TAGS | {"snapshot_id": snapshot})
    assert versions(mlc, name) == sorted([good.version, again.version])
    assert alias(mlc, name, CHALLENGER) == again.version  # the rerun completes
    assert registry.load_version(settings, again.version).knows(["u1"]) == ["u1"]


def test_a_version_left_by_a_failed_cleanup_is_named(model, model_dir, monkeypatch) -> None:
    settings = unique_settings()
    with monkeypatch.context() as patch:
        patch.setattr(SqlAlchemyStore, "set_registered_model_alias", _unreachable)
        patch.setattr(SqlAlchemyStore, "delete_model_version", _unreachable)
        with pytest.raises(RegistrationError, match="may have left a version without the "
                                                    "alias"):
            do_register(model, model_dir, settings)
    assert alias(registry.client(settings), settings.model_name, CHALLENGER) is None


def test_unreachable_tracking_server_is_one_line(model, model_dir, monkeypatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    settings = unique_settings()
    with pytest.raises(RegistrationError) as failed:
        do_register(model, model_dir, settings)
    message = str(failed.value)
    assert "\n" not in message and f"http://127.0.0.1:{port}" in message
    assert "reaching the tracking store" in message
    monkeypatch.undo()
    assert do_register(model, model_dir, settings).version == "1"  # store back: it completes


SEGMENT_REPORT = REPORT | {
    "segments": {"all": REPORT["models"],
                 "cold_items": {"fused": {"ndcg@10": 0.05, "precision@10": None},
                                "ease": {"ndcg@10": float("nan")}}},
    "fusion": {"weights": {"a": 0.6, "b": 0.4}},
}


def test_run_holds_plots_segment_metrics_and_default_tags(model, model_dir) -> None:
    settings = unique_settings()
    version = register(model, model_dir, SEGMENT_REPORT, {"k": 10},
                       {"snapshot_id": "s-9", "encoder": "some/encoder"}, settings)
    mlc = registry.client(settings)
    artifacts = {a.path for a in mlc.list_artifacts(version.run_id, "plots")}
    assert artifacts == {"plots/per_source_metrics.png", "plots/fusion_weights.png",
                         "plots/cold_vs_warm.png"}
    metrics = mlc.get_run(version.run_id).data.metrics
    assert metrics["cold_items/fused/ndcg_at_10"] == pytest.approx(0.05)
    assert "cold_items/fused/precision_at_10" not in metrics  # null: left out
    assert "cold_items/ease/ndcg_at_10" not in metrics  # NaN: left out
    assert not any(key.startswith("all/") for key in metrics)  # same as the overall ones
    tags = mlc.get_model_version(settings.model_name, version.version).tags
    assert tags["snapshot_id"] == "s-9" and tags["encoder"] == "some/encoder"
    assert (tags["dataset"], tags["protocol"], tags["k"]) == ("synthetic", "stratified", "10")
    assert tags["validation"] == tags["git_commit"] == "unknown"
    assert registry.EVAL_RUN_TAG not in tags
    loaded = registry.load_recommender(settings, version.version)  # by version number
    assert loaded.encoder == "some/encoder" and model.encoder is None


def test_model_uri() -> None:
    settings = Settings(model_name="m")
    assert registry.model_uri(settings, "champion") == "models:/m@champion"
    assert registry.model_uri(settings, "3") == "models:/m/3"


def test_rollback_and_load_without_champion() -> None:
    settings = unique_settings()
    with pytest.raises(LookupError, match="no champion to roll back"):
        registry.rollback(settings)
    assert registry.load_recommender(settings, CHAMPION) is None


def test_purge_deletes_artifacts_and_aliases_and_keeps_the_record(model, model_dir) -> None:
    settings = unique_settings()
    name = settings.model_name
    first = do_register(model, model_dir, settings)
    second = do_register(model, model_dir, settings)
    mlc = registry.client(settings)
    mlc.set_registered_model_alias(name, CHAMPION, first.version)
    location = registry._model_location(mlc, mlc.get_model_version(name, first.version))
    assert Path(location.removeprefix("file://")).is_dir()

    registry.purge(settings, first.version, "audit-1")
    registry.purge(settings, first.version, "audit-1")  # a repeat completes quietly
    found = mlc.get_model_version(name, first.version)
    assert found.tags[registry.PURGED_TAG] == "audit-1" and found.aliases == []
    assert not Path(location.removeprefix("file://")).exists()
    with pytest.raises(LookupError, match="purged by erasure audit-1"):
        registry.load_version(settings, first.version)
    assert alias(mlc, name, CHALLENGER) == second.version  # others untouched
    assert str(registry.ensure_champion(settings).version) == second.version  # not the purged

    mlc.set_model_version_tag(name, second.version, "previous_champion", first.version)
    with pytest.raises(LookupError, match="purged by erasure audit-1"):
        registry.rollback(settings)


def test_logged_requirements_are_pinned_and_cover_what_mlflow_would_infer(two_versions) -> None:
    settings, _, second = two_versions
    registry.client(settings)
    uri = f"models:/{settings.model_name}/{second.version}"
    local = mlflow.artifacts.download_artifacts(uri)
    listed = (Path(local) / "requirements.txt").read_text().split()
    pins = dict(line.split("==") for line in listed)
    assert set(registry.MODEL_REQUIREMENTS) | {"mlflow"} == set(pins)
    assert pins["recsys-hybrid"] == importlib.metadata.version("recsys-hybrid")
    # MLflow's own inference loads the model in a subprocess and lists what it imported.
    inferred = mlflow.models.infer_pip_requirements(local, "python_function")
    assert {line.split("==")[0] for line in inferred} <= set(pins)
