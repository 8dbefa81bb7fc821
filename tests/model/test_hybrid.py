from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion, combine
from recsys_core.model.hybrid import META_FILE, MODEL_FILE, HybridRecommender
from recsys_core.scoring import History, Scorer, TrainOptions
from tests.fusion.helpers import FixedConfig, FixedScorer, make_data, random_pairs

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


# --------------------------------------------------------------------------- fold-in, text,
# similar items, explanations (sources that fold in: linear item-item scorers)

class LinearConfig(FixedConfig):
    pass


class ItemItemScorer(Scorer[LinearConfig]):
    """score(u) = history(u) @ S for a fixed item-item matrix S; folds in exactly."""

    name = "item_item"

    def __init__(self, similarity: np.ndarray) -> None:
        super().__init__(LinearConfig())
        self.similarity = np.asarray(similarity, dtype=np.float32)

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        self.rows = sp.csr_matrix(data.matrix, dtype=np.float32)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return self._from(self.rows[user_index])

    def _fold_in(self, history: History) -> np.ndarray:
        return self._from(history.matrix)

    def _from(self, rows: sp.csr_matrix) -> np.ndarray:
        scores = np.asarray(rows @ self.similarity, dtype=np.float32)
        scores[np.diff(rows.indptr) == 0] = np.nan
        return scores


class FakeEncoder:
    """Stands in for TextEncoder: a fixed vector per known text."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


def build_foldable(encoder: str | None = "fake-encoder") -> HybridRecommender:
    rng = np.random.default_rng(5)
    data = make_data(N_USERS, N_ITEMS, random_pairs(N_USERS, N_ITEMS, 4, seed=8,
                                                    skip_items=(COLD,)), titles=True)
    sources = {"x": ItemItemScorer(rng.normal(size=(N_ITEMS, N_ITEMS))),
               "y": ItemItemScorer(rng.normal(size=(N_ITEMS, N_ITEMS)))}
    config = FusionConfig(weights={"x": 0.6, "y": 0.4}, bias=BIAS)
    embeddings = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    return HybridRecommender(WeightedFusion(config, sources).train(data), data, encoder=encoder,
                             item_embeddings=embeddings)


@pytest.fixture(scope="module")
def foldable() -> HybridRecommender:
    return build_foldable()


def test_recent_items_of_a_new_user_fold_in_like_a_trained_user(foldable) -> None:
    # the fold-in of a known user's own items equals that user's trained recommendations
    for row in range(N_USERS):
        items = [f"i{i}" for i in foldable.seen[row].indices]
        assert (foldable.recommend(None, k=5, recent_items=items)
                == foldable.recommend(f"u{row}", k=5))


def test_recent_items_excluded_unknown_ones_ignored_order_kept(foldable) -> None:
    recs = foldable.recommend(None, k=N_ITEMS, recent_items=["i3", "ghost", "i5"])
    ids = [r.item_id for r in recs]
    assert "i3" not in ids and "i5" not in ids and len(ids) == N_ITEMS - 2
    assert not any(r.fallback for r in recs)
    assert all(sum(r.contributions.values()) + BIAS == pytest.approx(r.score, abs=1e-5)
               for r in recs)
    kept = foldable.recommend(None, k=N_ITEMS, recent_items=["i3", "i5"], exclude_seen=False)
    assert {"i3", "i5"} <= {r.item_id for r in kept}


def test_known_user_with_recent_items_extends_the_history(foldable) -> None:
    own = [f"i{i}" for i in foldable.seen[0].indices]
    extra = next(f"i{i}" for i in range(N_ITEMS) if f"i{i}" not in own)
    assert (foldable.recommend("u0", k=5, recent_items=[extra])
            == foldable.recommend(None, k=5, recent_items=[*own, extra]))


@pytest.mark.parametrize("recent", [[], ["ghost", "nobody"]])
def test_no_usable_history_falls_back_to_popular_flagged(foldable, recent) -> None:
    for user in (None, "stranger"):
        recs = foldable.recommend(user, k=3, recent_items=recent)
        assert recs == foldable.recommend("stranger", k=3) and all(r.fallback for r in recs)


def test_sources_that_cannot_fold_in_fall_back_to_popular(model) -> None:
    # FixedScorer has no fold-in: every source is NaN, nothing is scorable
    recs = model.recommend(None, k=3, recent_items=["i1"])
    assert all(r.fallback for r in recs) and "i1" not in {r.item_id for r in recs}


def test_text_query_ranks_items_by_cosine_and_loads_encoder_once(monkeypatch) -> None:
    model = build_foldable()
    target = model.item_embeddings[7] + 0.01
    fake = FakeEncoder({"space war": target, "cats": -target})
    model._text_encoder = fake
    recs = model.recommend(query="space war", k=3)
    cosine = model.item_embeddings @ (target / np.linalg.norm(target))
    assert [r.item_id for r in recs] == [f"i{i}" for i in np.argsort(-cosine)[:3]]
    assert recs[0].item_id == "i7" and recs[0].title == "title 7"
    assert recs[0].contributions == {"query": pytest.approx(recs[0].score)}
    assert not recs[0].fallback
    assert model.recommend(query="cats", k=1)[0].item_id != "i7"
    assert fake.calls == 2


def test_text_encoder_is_built_lazily_from_the_reference(monkeypatch) -> None:
    built = []

    class Recorder(FakeEncoder):
        def __init__(self, config) -> None:
            built.append(config)
            super().__init__({"q": np.ones(8)})

    import recsys_core.embed.encoder as encoder_module

    monkeypatch.setattr(encoder_module, "TextEncoder", Recorder)
    model = build_foldable("some/encoder")
    assert built == []  # building and pickling never load an encoder
    model.recommend(query="q", k=2)
    model.recommend(query="q", k=2)
    assert [c.name_or_path for c in built] == ["some/encoder"]
    assert built[0].device == "cpu"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"query": "   "}, "empty"),
    ({"query": "q", "user_id": "u1"}, "cannot be combined"),
    ({"query": "q", "recent_items": ["i1"]}, "cannot be combined"),
    ({}, "give a user_id"),
])
def test_bad_query_requests(foldable, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        foldable.recommend(k=3, **kwargs)


def test_text_query_needs_embeddings_and_encoder(model) -> None:
    with pytest.raises(ValueError, match="no item embeddings"):
        model.recommend(query="anything", k=2)
    with pytest.raises(ValueError, match="no text encoder"):
        build_foldable(encoder=None).recommend(query="anything", k=2)


def test_embeddings_default_to_data_then_text_source() -> None:
    from recsys_core.deep.text_similarity import TextSimilarity

    data = make_data(4, 6, random_pairs(4, 6, 2, seed=1))
    vectors = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    text = TextSimilarity().train(type(data)(data.matrix, data.users, data.items,
                                             item_embeddings=vectors))
    fusion = WeightedFusion(FusionConfig(weights={"text": 1.0}), {"text": text}).train(data)
    model = HybridRecommender(fusion, data)
    assert model.item_embeddings is text.item_vectors
    np.testing.assert_allclose(np.linalg.norm(model.item_embeddings, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="one row per item"):
        HybridRecommender(fusion, data, item_embeddings=vectors[:3])


def test_similar_items_fold_in_one_item(foldable) -> None:
    recs = foldable.similar_items("i2", k=4)
    assert recs == foldable.recommend(None, k=4, recent_items=["i2"])
    assert "i2" not in {r.item_id for r in recs} and len(recs) == 4
    unknown = foldable.similar_items("ghost", k=2)
    assert all(r.fallback for r in unknown)


def test_explain_gives_contributions_top_source_and_drivers(foldable) -> None:
    user, row = "u3", 3
    item = foldable.recommend(user, k=1)[0]
    why = foldable.explain(user, item.item_id)
    assert why.score == pytest.approx(item.score) and why.contributions == pytest.approx(
        item.contributions)
    assert why.top_source == max(item.contributions, key=item.contributions.get)
    assert not why.fallback and why.title == item.title
    # the linear source's score is the sum over history items of w_j * S[j, i]: drivers are
    # exactly the positive terms, largest first
    similarity = foldable.fusion.sources[why.top_source].similarity
    col = int(item.item_id[1:])
    terms = {f"i{j}": float(similarity[j, col]) for j in foldable.seen[row].indices}
    expected = sorted((j for j, v in terms.items() if v > 0), key=terms.get, reverse=True)
    assert [d.item_id for d in why.drivers] == expected[:5]
    assert [d.influence for d in why.drivers] == pytest.approx([terms[j] for j in expected[:5]])
    assert foldable.explain(user, item.item_id, max_drivers=1).drivers == why.drivers[:1]


def test_explain_unknown_user_is_popularity_and_unknown_item_raises(foldable) -> None:
    why = foldable.explain("stranger", "i0")
    assert why.fallback and why.top_source is None and why.drivers == ()
    assert why.score == pytest.approx(foldable.popularity[0] / foldable.popularity.sum())
    with pytest.raises(ValueError, match="unknown item"):
        foldable.explain("u1", "ghost")


def test_explain_sources_without_fold_in_give_no_drivers(model) -> None:
    why = model.explain("u1", "i0")
    assert why.top_source in {"a", "b"} and why.drivers == ()


def test_score_users_matches_single_user_scoring(foldable) -> None:
    rows = np.arange(N_USERS)
    block = foldable.score_users(rows)
    for row in rows:
        recs = foldable.recommend(f"u{row}", k=N_ITEMS)
        got = {f"i{i}": block[row, i] for i in np.flatnonzero(np.isfinite(block[row]))}
        assert got == pytest.approx({r.item_id: r.score for r in recs})
    assert np.isnan(block[foldable.seen.nonzero()]).all()
    assert np.isfinite(foldable.score_users(rows, exclude_seen=False)).all()


def test_pickle_drops_the_loaded_encoder_and_keeps_text_queries(foldable, tmp_path) -> None:
    model = build_foldable()
    model._text_encoder = FakeEncoder({"q": np.ones(8)})
    loaded = HybridRecommender.load(model.save(tmp_path / "m"))
    assert loaded._text_encoder is None and loaded.encoder == "fake-encoder"
    np.testing.assert_array_equal(loaded.item_embeddings, model.item_embeddings)
    meta = json.loads((tmp_path / "m" / META_FILE).read_text())
    assert meta["encoder"] == "fake-encoder" and meta["text_queries"] is True
    assert loaded.recommend(None, k=3, recent_items=["i1"]) == model.recommend(
        None, k=3, recent_items=["i1"])


def test_models_pickled_before_fold_in_still_load(model, tmp_path) -> None:
    state = model.__getstate__()
    for newer in ("history", "times", "encoder", "item_embeddings"):
        state.pop(newer)
    old = HybridRecommender.__new__(HybridRecommender)
    old.__setstate__(state)
    assert old.recommend("u1", k=4) == model.recommend("u1", k=4)
    assert old.encoder is None and old.item_embeddings is None


def test_without_users_answers_them_with_the_fallback_and_the_others_as_before(
        model: HybridRecommender) -> None:
    forgotten = model.without_users(["u3", "u8", "stranger"])
    assert forgotten is not None and model.knows(["u3", "u8", "stranger"]) == ["u3", "u8"]
    assert forgotten.knows(["u3", "u8"]) == []
    assert len(forgotten.users) == N_USERS - 2 and forgotten.history.shape[0] == N_USERS - 2
    assert all(r.fallback for r in forgotten.recommend("u3", k=3))
    for row in (0, 4, 9):
        user = f"u{row}"
        assert [r.item_id for r in forgotten.recommend(user, k=5)] == [
            r.item_id for r in model.recommend(user, k=5)]
    kept_rows = [u for u in range(N_USERS) if u not in (3, 8)]
    expected = np.asarray((model.seen[kept_rows] > 0).sum(axis=0)).ravel()
    np.testing.assert_array_equal(forgotten.popularity, expected)  # counted without them
    assert b"\x8c\x02u3" not in pickle.dumps(forgotten)
    assert model.knows(["u3"]) == ["u3"]  # the original model is unchanged


def test_without_users_is_none_when_a_source_cannot_drop_them() -> None:
    class Opaque(FixedScorer):
        """Per-user state the shape search cannot see into: forgetting needs a retrain."""

        def without_users(self, user_ids):
            return None

    data = make_data(N_USERS, N_ITEMS, random_pairs(N_USERS, N_ITEMS, 4, seed=8))
    sources = {"a": Opaque(source_values()["a"])}
    fused = WeightedFusion(FusionConfig(weights={"a": 1.0}), sources).train(data)
    assert HybridRecommender(fused, data).without_users(["u1"]) is None
