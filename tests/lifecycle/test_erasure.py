"""The erasure's core steps in process: requests, the audit, and the registry's side."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from recsys_core.config import Settings
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from recsys_core.lifecycle import erasure, registry
from recsys_core.lifecycle.registry import CHALLENGER, CHAMPION, alias_version
from recsys_core.model.hybrid import HybridRecommender
from tests.fusion.helpers import FixedScorer
from tests.lifecycle.builders import TAGS, unique_settings


class Opaque(FixedScorer):
    """A source that cannot drop users: forgetting needs a retrain."""

    def without_users(self, user_ids):
        return None


def aliases(settings: Settings) -> tuple[str | None, str | None]:
    mlc = registry.client(settings)
    found = [alias_version(mlc, settings.model_name, a) for a in (CHAMPION, CHALLENGER)]
    return tuple(None if v is None else str(v.version) for v in found)


def register(promotion_run, model: HybridRecommender, settings: Settings, params=None) -> str:
    folder = model.save(promotion_run.store.folder / "erasure-model")
    report = {"dataset": "synthetic", "protocol": "stratified", "k": 5, "models": {}}
    return registry.register(model, folder, report, params or {}, TAGS, settings).version


@pytest.mark.parametrize("bad", [[], [""], ["  "]])
def test_an_empty_request_is_refused(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="user id"):
        erasure.user_list(bad)


def test_a_request_file_is_private_and_read_back(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    path = erasure.write_request(settings, ["u1", "u2", "u1"], "ticket 9")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert erasure.read_request(path) == ["u1", "u2"]
    erasure.close_request(path)
    assert not path.exists()
    with pytest.raises(ValueError, match="must not contain a user id"):
        erasure.write_request(settings, ["u7"], "user u7 asked")
    assert list(path.parent.iterdir()) == []


def test_the_audit_row_counts_and_never_names(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    audit_id = erasure.start(settings, ["alice-42", "bob-17"], "ticket 9")
    erasure.finish(settings, audit_id, {"clean_interactions": 3}, "4")
    row = erasure.audit(settings).row(0, named=True)
    assert row["audit_id"] == audit_id and row["n_users"] == 2 and row["reason"] == "ticket 9"
    assert row["removed"] == '{"clean_interactions": 3}' and row["model_version"] == "4"
    assert row["finished_at"] >= row["requested_at"]
    assert "alice" not in str(row) and "bob" not in str(row)


def test_the_champion_is_replaced_by_a_copy_and_older_holders_purged(
        promotion_run, promotion_models) -> None:
    strong, weak = promotion_models
    settings = unique_settings()
    old = register(promotion_run, weak.model, settings)
    champion = register(promotion_run, strong.model, settings, {"data": "synthetic:3000"})
    registry.client(settings).set_registered_model_alias(settings.model_name, CHAMPION,
                                                        champion)
    done = erasure.erase_model(settings, ["u1", "nobody"], "audit-9", {"snap": "snap-2"})
    assert done.retrain is None and done.replaced == champion and done.users == 1
    assert done.version is not None and sorted(done.purged) == sorted([old, champion])
    assert aliases(settings) == (done.version, done.version)
    mlc = registry.client(settings)
    tags = mlc.get_model_version(settings.model_name, done.version).tags
    assert tags[registry.ERASURE_TAG] == "audit-9" and tags["erasure.replaces"] == champion
    assert TAGS["snapshot_id"] == "snap" and tags["snapshot_id"] == "snap-2"  # re-keyed
    assert "promotion.challenger_score" not in tags and registry.EVAL_RUN_TAG not in tags
    params = mlc.get_run(mlc.get_model_version(settings.model_name, done.version).run_id
                         ).data.params
    assert params["data"] == "synthetic:3000"  # the champion's run params carry over
    copy = registry.load_version(settings, done.version)
    assert copy.knows(["u1"]) == [] and len(copy.users) == len(strong.model.users) - 1
    assert [r.item_id for r in copy.recommend("u2", 5)] == [
        r.item_id for r in strong.model.recommend("u2", 5)]
    again = erasure.erase_model(settings, ["u1", "nobody"], "audit-10")
    assert again.version is None and again.users == 0 and again.purged == []


def test_a_champion_that_cannot_drop_users_asks_for_a_retraining(
        promotion_run, promotion_models) -> None:
    train = promotion_run.store.data("train")
    values = np.random.default_rng(0).normal(size=(train.n_users, train.n_items))
    fusion = WeightedFusion(FusionConfig(weights={"fixed": 1.0}), {"fixed": Opaque(values)})
    model = HybridRecommender(fusion.train(train), train)
    settings = unique_settings()
    version = register(promotion_run, model, settings, {
        "data": "synthetic:3000", "training": {"protocol": "leave_last", "k": 5, "seed": 3,
                                               "trials": 2}, "encoder": "tiny"})
    registry.ensure_champion(settings)
    done = erasure.erase_model(settings, ["u1"], "audit-11")
    assert done.version is None and done.purged == [] and done.replaced == version
    assert done.retrain == erasure.Retrain(data="synthetic:3000", protocol="leave_last", k=5,
                                           seed=3, trials=2, encoder="tiny")
    assert aliases(settings) == (version, version)  # nothing moved before the retraining
    without = promotion_models[1].model.without_users(["u1"])  # stands in for the retrain
    assert without is not None
    retrained = register(promotion_run, without, settings)
    assert erasure.replace_champion(settings, retrained, ["u1"], "audit-11") == [version]
    assert aliases(settings)[0] == retrained
    found = registry.client(settings).get_model_version(settings.model_name, version)
    assert found.tags[registry.PURGED_TAG] == "audit-11"
