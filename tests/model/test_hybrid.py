from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from recsys_core.fusion.weighted import FusionConfig, WeightedFusion, combine
from recsys_core.model.hybrid import META_FILE, MODEL_FILE, HybridRecommender
from tests.fusion.helpers import FixedScorer, make_data, random_pairs

N_USERS, N_ITEMS, COLD = 10, 14, 13  # item 13 has no interactions; CF-like "a" gives it NaN
BIAS = 0.3


def source_values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    a = rng.normal(size=(N_USERS, N_ITEMS)).astype(np.float32)
    a[:, COLD] = np.nan
    b = rng.normal(size=(N_USERS, N_ITEMS)).astype(np.float32)
    return {"a": a, "b": b, "idle": rng.normal(size=(N_USERS, N_ITEMS)).astype(np.float32)}


def build(normaliser: str = "zscore", missing: str = "mean") -> HybridRecommender:
    data = make_data(N_USERS, N_ITEMS, random_pairs(N_USERS, N_ITEMS, 4, seed=8,
                                                    skip_items=(COLD,)), titles=True)
    config = FusionConfig(weights={"a": 0.7, "b": 0.4, "idle": 0.0}, bias=BIAS,
                          normaliser=normaliser, missing=missing)
    sources = {name: FixedScorer(values) for name, values in source_values().items()}
    return HybridRecommender(WeightedFusion(config, sources).train(data), data)


@pytest.fixture(scope="module")
def model() -> HybridRecommender:
    return build()


def expected_ranking(model: HybridRecommender, user: str, k: int) -> list[str]:
    """Top-k unseen item IDs from the raw source matrices, computed without the recommender."""
    row = int(user[1:])
    fused = combine({n: v[[row]] for n, v in source_values().items()}, model.fusion.config)[0]
    fused[model.seen[row].indices] = np.nan
    order = [i for i in np.argsort(-np.nan_to_num(fused, nan=-np.inf), kind="stable")
             if np.isfinite(fused[i])]
    return [f"i{i}" for i in order[:k]]


def test_recommend_returns_k_unseen_items_best_first(model: HybridRecommender) -> None:
    for row in range(N_USERS):
        user = f"u{row}"
        recs = model.recommend(user, k=5)
        ids = [r.item_id for r in recs]
        seen = {f"i{i}" for i in model.seen[row].indices}
        assert len(ids) == 5 and len(set(ids)) == 5
        assert not seen & set(ids)
        assert ids == expected_ranking(model, user, 5)
        scores = [r.score for r in recs]
        assert scores == sorted(scores, reverse=True)
        assert all(r.title == f"title {r.item_id[1:]}" and not r.fallback for r in recs)


@pytest.mark.parametrize("normaliser", ["zscore", "rank", "minmax"])
@pytest.mark.parametrize("missing", ["mean", "min"])
def test_contributions_plus_bias_equal_the_fused_score(normaliser: str, missing: str) -> None:
    model = build(normaliser, missing)
    cold_seen = False
    for row in range(N_USERS):
        for rec in model.recommend(f"u{row}", k=N_ITEMS):  # every unseen item, the cold one too
            assert set(rec.contributions) == {"a", "b"}  # zero-weight source not reported
            assert sum(rec.contributions.values()) + BIAS == pytest.approx(rec.score, abs=1e-5)
            cold_seen |= rec.item_id == f"i{COLD}"
    assert cold_seen


def test_cold_item_contribution_follows_the_missing_rule() -> None:
    for missing in ("mean", "min"):
        model = build("minmax", missing)
        rec = next(r for r in model.recommend("u0", k=N_ITEMS) if r.item_id == f"i{COLD}")
        a = source_values()["a"][0]
        known = np.delete(a, COLD)
        seen = model.seen[0].indices
        assert COLD not in seen
        normed = (known - known.min()) / (known.max() - known.min())
        fill = normed.mean() if missing == "mean" else 0.0
        assert rec.contributions["a"] == pytest.approx(0.7 * fill, abs=1e-5)


def test_exclude_seen_false_can_return_seen_items(model: HybridRecommender) -> None:
    seen = {f"i{i}" for i in model.seen[2].indices}
    everything = {r.item_id for r in model.recommend("u2", k=N_ITEMS, exclude_seen=False)}
    assert seen <= everything and len(everything) == N_ITEMS
    assert not seen & {r.item_id for r in model.recommend("u2", k=N_ITEMS)}


def test_k_beyond_candidates_returns_every_unseen_item(model: HybridRecommender) -> None:
    recs = model.recommend("u1", k=1000)
    assert len(recs) == N_ITEMS - model.seen[1].nnz


def test_unknown_user_gets_popular_items_flagged(model: HybridRecommender) -> None:
    recs = model.recommend("stranger", k=4)
    counts = np.bincount(model.seen.indices, minlength=N_ITEMS)
    assert len(recs) == 4
    assert all(r.fallback and r.contributions == {} for r in recs)
    got = [int(r.item_id[1:]) for r in recs]
    assert [counts[i] for i in got] == sorted(counts, reverse=True)[:4]
    assert [r.score for r in recs] == pytest.approx([counts[i] / counts.sum() for i in got])
    assert COLD not in got


@pytest.mark.parametrize("k", [0, -1])
@pytest.mark.parametrize("user", ["u0", "stranger"])
def test_k_below_one_raises(model: HybridRecommender, user: str, k: int) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        model.recommend(user, k=k)


def test_recommend_does_not_mutate_state(model: HybridRecommender) -> None:
    first = model.recommend("u3", k=6)
    assert model.recommend("u3", k=6) == first
    assert model.recommend("u3", k=6, exclude_seen=False) != first


def test_untrained_fusion_rejected() -> None:
    data = make_data(2, 3, [(0, 0), (1, 2)])
    fusion = WeightedFusion(FusionConfig(weights={"a": 1.0}),
                            {"a": FixedScorer(np.zeros((2, 3)))})
    with pytest.raises(ValueError, match="trained"):
        HybridRecommender(fusion, data)


def test_save_load_round_trip(model: HybridRecommender, tmp_path) -> None:
    folder = model.save(tmp_path / "m", meta={"dataset": "synthetic", "snapshot": "s-1"})
    loaded = HybridRecommender.load(folder)
    for user in [f"u{u}" for u in range(N_USERS)] + ["stranger"]:
        assert loaded.recommend(user, k=7) == model.recommend(user, k=7)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["weights"] == model.fusion.config.model_dump()
    assert (meta["n_users"], meta["n_items"]) == (N_USERS, N_ITEMS)
    assert (meta["dataset"], meta["snapshot"]) == ("synthetic", "s-1")


def test_load_rejects_other_pickles(tmp_path) -> None:
    (tmp_path / MODEL_FILE).write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(TypeError, match="HybridRecommender"):
        HybridRecommender.load(tmp_path)
