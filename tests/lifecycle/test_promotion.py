"""Gated promotion end to end: models trained in process, registered, compared, rolled back."""

from __future__ import annotations

import pytest

from recsys_core.lifecycle import promotion, registry
from recsys_core.lifecycle.registry import CHALLENGER, CHAMPION, alias_version
from tests.lifecycle.builders import unique_settings


def aliases(settings) -> tuple[str | None, str | None]:
    mlc = registry.client(settings)
    found = [alias_version(mlc, settings.model_name, a) for a in (CHAMPION, CHALLENGER)]
    return tuple(None if v is None else str(v.version) for v in found)


def tags(settings, version: str) -> dict[str, str]:
    return registry.client(settings).get_model_version(settings.model_name, version).tags


def test_better_model_becomes_champion_worse_does_not_rollback_restores(
        promotion_run, promotion_models) -> None:
    strong, weak = promotion_models
    settings = unique_settings()

    first = promotion_run.register(weak, settings)
    decision = promotion.challenge(settings)
    assert decision.promoted and decision.champion_score is None
    assert aliases(settings) == ("1", "1") and first.version == "1"

    promotion_run.register(strong, settings)  # trained again, better: becomes champion
    decision = promotion.challenge(settings)
    assert decision.promoted and decision.version == "2" and decision.champion_version == "1"
    assert decision.challenger_score > decision.champion_score
    assert aliases(settings) == ("2", "2")
    v2 = tags(settings, "2")
    assert v2["promotion.decision"] == "promoted" and v2["previous_champion"] == "1"
    assert float(v2["promotion.challenger_score"]) == pytest.approx(decision.challenger_score,
                                                                    abs=1e-6)
    assert float(v2["promotion.champion_score"]) == pytest.approx(decision.champion_score,
                                                                  abs=1e-6)
    assert v2["promotion.metric"] == "ndcg@5" and v2["promotion.champion_version"] == "1"
    # the scores are those of the report: same model, same evaluation data
    assert decision.challenger_score == pytest.approx(
        strong.evaluation.metrics["fused"]["ndcg@5"])
    assert decision.champion_score == pytest.approx(weak.evaluation.metrics["fused"]["ndcg@5"])

    promotion_run.register(weak, settings)  # worse: stays challenger only
    decision = promotion.challenge(settings)
    assert not decision.promoted and decision.champion_version == "2"
    assert aliases(settings) == ("2", "3")
    v3 = tags(settings, "3")
    assert v3["promotion.decision"] == "refused" and "previous_champion" not in v3
    assert float(v3["promotion.champion_score"]) > float(v3["promotion.challenger_score"])

    done = registry.rollback(settings)
    assert (done.from_version, done.to_version) == ("2", "1")
    assert aliases(settings)[0] == "1"
    assert tags(settings, "2")["rollback.replaced_by"] == "1"
    assert tags(settings, "1")["rollback.restored_from"] == "2"
    with pytest.raises(LookupError, match="no previous champion"):
        registry.rollback(settings)  # version 1 was the first champion


def test_margin_keeps_a_slightly_better_challenger_out(promotion_run, promotion_models) -> None:
    strong, weak = promotion_models
    settings = unique_settings()
    promotion_run.register(weak, settings)
    promotion.challenge(settings)
    promotion_run.register(strong, settings)
    decision = promotion.challenge(settings, margin=100.0)
    assert not decision.promoted and aliases(settings) == ("1", "2")
    assert tags(settings, "2")["promotion.margin"] == "100"
    assert promotion.challenge(settings, margin=0.01).promoted
    again = promotion.challenge(settings)  # the challenger is champion already
    assert again.promoted and "already champion" in again.reason


def test_gate_scores_the_champion_on_the_given_data(promotion_run, promotion_models) -> None:
    strong, weak = promotion_models
    settings = unique_settings()
    promotion_run.register(strong, settings)
    promotion.challenge(settings)
    version = promotion_run.register(weak, settings).version
    data = promotion.run_data(str(promotion_run.store.folder), 5)
    decision = promotion.gate(settings, version, 0.99, data)  # claimed score beats champion
    assert decision.promoted and decision.champion_score == pytest.approx(
        strong.evaluation.metrics["fused"]["ndcg@5"])


def test_version_tags_and_encoder_reference(promotion_run, promotion_models) -> None:
    strong, _ = promotion_models
    settings = unique_settings()
    version = promotion_run.register(strong, settings).version
    found = tags(settings, version)
    for key in registry.REQUIRED_TAGS:
        assert found[key] not in ("", None)
    assert found["encoder"] == promotion_run.encoder and found["k"] == "5"
    assert found[registry.EVAL_RUN_TAG] == str(promotion_run.store.folder)
    loaded = registry.load_recommender(settings, version)
    assert loaded.encoder == promotion_run.encoder and loaded.item_embeddings is not None
    assert strong.model.encoder is None  # the caller's model is left alone


def test_challenge_without_challenger_or_data() -> None:
    settings = unique_settings()
    with pytest.raises(LookupError, match="no challenger"):
        promotion.challenge(settings)


def test_challenge_needs_evaluation_data(promotion_models) -> None:
    strong, _ = promotion_models
    settings = unique_settings()
    registry.register(strong.model, strong.model_dir, {"k": 5, "models": {}}, {}, {},
                      settings)
    with pytest.raises(LookupError, match="no evaluation data"):
        promotion.challenge(settings)


def test_ensure_champion_picks_the_first_version(promotion_run, promotion_models) -> None:
    strong, weak = promotion_models
    settings = unique_settings()
    with pytest.raises(LookupError, match="run `recsys train` first"):
        registry.ensure_champion(settings)
    promotion_run.register(weak, settings)
    promotion_run.register(strong, settings)
    assert aliases(settings) == (None, "2")
    assert str(registry.ensure_champion(settings).version) == "1"
    assert aliases(settings) == ("1", "2")
    assert tags(settings, "1")["promotion.decision"].startswith("initial")
    assert str(registry.ensure_champion(settings).version) == "1"  # idempotent


def test_champion_and_challenger_are_scored_on_the_same_sampled_users(
        promotion_run, monkeypatch) -> None:
    from recsys_core.evaluation import limits
    from recsys_core.evaluation.evaluator import evaluate, test_rows
    from tests.lifecycle.builders import STRONG

    bound = 20
    monkeypatch.setattr(limits, "EVAL_MAX_USERS", bound)
    monkeypatch.setattr(limits, "EVAL_MIN_USERS", bound)
    data = promotion.run_data(str(promotion_run.store.folder), 5)
    assert len(test_rows(data.train, data.test)) > bound  # a run larger than the sample
    final = promotion_run.train(STRONG)
    assert final.evaluation.n_users["all"] == bound  # the report ranked the sample
    reported = final.evaluation.metrics["fused"]["ndcg@5"]
    everyone = evaluate({"m": final.model.fusion}, data.train, data.test, k=5)
    assert everyone.metrics["m"]["ndcg@5"] != pytest.approx(reported)  # the sample matters

    settings = unique_settings()
    promotion_run.register(final, settings)
    promotion.challenge(settings)
    again = promotion_run.register(final, settings).version  # the same model challenges
    decision = promotion.gate(settings, again, reported, data)
    assert decision.champion_score == pytest.approx(reported)  # same users, same score
    assert promotion.score_model(final.model, data) == pytest.approx(reported)
    assert not decision.promoted  # equal is not better
