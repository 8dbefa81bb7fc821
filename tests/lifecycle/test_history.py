"""history: training runs and versions read back from a store of their own, created by nothing
but registration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from recsys_core.config import Settings
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from recsys_core.lifecycle import history, registry
from recsys_core.model.hybrid import HybridRecommender
from tests.fusion.helpers import FixedScorer, make_data, random_pairs

TAGS = {"snapshot_id": "s", "validation": "passed", "git_commit": "c", "dataset": "shop",
        "protocol": "temporal"}


def report(ndcg: float) -> dict:
    return {"dataset": "shop", "protocol": "temporal", "k": 5,
            "models": {"fused": {"ndcg@5": ndcg, "hit@5": 0.5}}}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A home whose MLflow store does not exist yet (the global tracking URI restored after)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    try:
        yield Settings(home=tmp_path / "home")
    finally:
        mlflow.set_tracking_uri(before)


def test_an_absent_store_reads_empty_and_stays_absent(settings: Settings) -> None:
    assert not settings.has_tracking_store
    assert history.training_runs(settings) == [] and history.versions(settings) == []
    assert history.resolve(settings, "champion") is None
    assert not settings.mlflow_db.exists()


def test_runs_and_versions_with_aliases_and_decisions(settings: Settings,
                                                      tmp_path: Path) -> None:
    data = make_data(6, 10, random_pairs(6, 10, 3, seed=1), titles=True)
    scores = np.random.default_rng(0).normal(size=(6, 10))
    model = HybridRecommender(WeightedFusion(FusionConfig(weights={"a": 1.0}),
                                             {"a": FixedScorer(scores)}).train(data), data)
    folder = model.save(tmp_path / "model", meta={"dataset": "shop"})
    first = registry.register(model, folder, report(0.20), {}, TAGS, settings)
    mlc = registry.client(settings)
    registry.promote(mlc, settings.model_name, first.version, 0.20, None)
    second = registry.register(model, folder, report(0.15), {}, TAGS, settings)
    registry.promote(mlc, settings.model_name, second.version, 0.15, 0.20)

    assert settings.has_tracking_store
    runs = history.training_runs(settings)
    assert [r.run_id for r in runs] == [second.run_id, first.run_id]
    assert [r.fused_ndcg for r in runs] == [0.15, 0.20]
    assert {(r.dataset, r.protocol, r.k) for r in runs} == {("shop", "temporal", 5)}
    assert runs[0].started >= runs[1].started
    assert history.training_runs(settings, limit=1) == runs[:1]

    newest, oldest = history.versions(settings)
    assert (newest.version, newest.run_id, newest.aliases) == ("2", second.run_id,
                                                               ("challenger",))
    assert (newest.decision, newest.challenger_score, newest.champion_score,
            newest.champion_version) == ("refused", 0.15, 0.20, "1")
    assert (oldest.version, oldest.aliases, oldest.decision) == ("1", ("champion",), "promoted")
    assert oldest.champion_score is None and oldest.champion_version is None
    assert oldest.dataset == "shop"
    assert [history.resolve(settings, name) for name in ("champion", "challenger", "2", "3")
            ] == ["1", "2", "2", None]
