from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from recsys_core.cf.ease import EASE, EASEConfig
from recsys_core.cf.popular import MostPop
from recsys_core.data.vocab import Vocabulary
from recsys_core.fusion.normalise import normalise
from recsys_core.fusion.weighted import FilledBlocks, FusionConfig, WeightedFusion, combine
from recsys_core.scoring import Scorer
from tests.fusion.helpers import ExplodingScorer, FixedScorer, make_data, random_pairs
from tests.scorer_contract import ScorerContract

NAN = np.nan
SQ = np.sqrt(1.5)
R5 = np.sqrt(5.0)


def block(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


# --- combine ---------------------------------------------------------------------------------

def test_weights_and_bias_applied_by_hand() -> None:
    a = block([0, 5, 10])   # minmax -> 0, .5, 1
    b = block([4, 2, 0])    # minmax -> 1, .5, 0
    config = FusionConfig(weights={"a": 3.0, "b": 1.0}, bias=0.25, normaliser="minmax")
    np.testing.assert_allclose(combine({"a": a, "b": b}, config), [[1.25, 2.25, 3.25]],
                               rtol=1e-6)
    swapped = config.model_copy(update={"weights": {"a": 1.0, "b": 3.0}})
    np.testing.assert_allclose(combine({"a": a, "b": b}, swapped), [[3.25, 2.25, 1.25]],
                               rtol=1e-6)


def test_sources_are_normalised_per_user_before_weighting() -> None:
    # b's raw scale is 1000x a's; after z-scoring equal weights make them tie-break evenly
    a = block([1, 2, 3], [3, 2, 1])
    b = block([3000, 1000, 2000], [1000, 3000, 2000])
    fused = combine({"a": a, "b": b}, FusionConfig(weights={"a": 1.0, "b": 1.0}))
    np.testing.assert_allclose(fused, block([-SQ + SQ, 0 - SQ, SQ + 0], [SQ - SQ, 0 + SQ, -SQ]),
                               atol=1e-6)


def test_missing_mean_and_min_zscore_by_hand() -> None:
    a = block([1, 2, 3, NAN])   # cold item in column 3: a cannot score it
    b = block([2, 4, 6, 8])     # z: -3, -1, 1, 3 over sqrt(5)
    weights = {"a": 1.0, "b": 2.0}
    head = [-SQ - 6 / R5, -2 / R5, SQ + 2 / R5]
    mean = combine({"a": a, "b": b}, FusionConfig(weights=weights, missing="mean"))
    low = combine({"a": a, "b": b}, FusionConfig(weights=weights, missing="min"))
    np.testing.assert_allclose(mean, [head + [0 + 6 / R5]], atol=1e-5)   # a adds its mean, 0
    np.testing.assert_allclose(low, [head + [-SQ + 6 / R5]], atol=1e-5)  # a adds its lowest


@pytest.mark.parametrize("normaliser", ["rank", "minmax"])
def test_missing_mean_is_the_users_mean_not_zero_for_bounded_normalisers(normaliser: str
                                                                          ) -> None:
    a = block([1, 2, 3, NAN])   # rank / minmax -> 0, .5, 1, NaN: mean .5, min 0
    b = block([2, 4, 6, 8])     # rank / minmax -> 0, 1/3, 2/3, 1
    weights = {"a": 1.0, "b": 1.0}
    mean = combine({"a": a, "b": b}, FusionConfig(weights=weights, normaliser=normaliser,
                                                  missing="mean"))
    low = combine({"a": a, "b": b}, FusionConfig(weights=weights, normaliser=normaliser,
                                                 missing="min"))
    np.testing.assert_allclose(mean, [[0, 0.5 + 1 / 3, 1 + 2 / 3, 0.5 + 1]], atol=1e-6)
    np.testing.assert_allclose(low, [[0, 0.5 + 1 / 3, 1 + 2 / 3, 0 + 1]], atol=1e-6)


@pytest.mark.parametrize("missing", ["mean", "min"])
def test_item_no_source_can_score_stays_nan(missing: str) -> None:
    a = block([1, NAN, 3], [NAN, NAN, NAN])
    b = block([2, NAN, 1], [NAN, NAN, NAN])
    fused = combine({"a": a, "b": b},
                    FusionConfig(weights={"a": 1.0, "b": 1.0}, bias=1.0, missing=missing))
    assert np.isnan(fused[0, 1]) and np.isfinite(fused[0, [0, 2]]).all()
    assert np.isnan(fused[1]).all()


def test_zero_weight_and_unlisted_sources_ignored() -> None:
    a = block([1, 2, 3])
    junk = block([NAN, 100, -100])
    only_a = combine({"a": a}, FusionConfig(weights={"a": 1.0}))
    np.testing.assert_allclose(
        combine({"a": a, "z": junk}, FusionConfig(weights={"a": 1.0, "z": 0.0})), only_a)
    np.testing.assert_allclose(combine({"a": a, "z": junk}, FusionConfig(weights={"a": 1.0})),
                               only_a)


def test_no_nonzero_weight_raises() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        combine({"a": block([1, 2])}, FusionConfig(weights={"a": 0.0}))
    with pytest.raises(ValueError, match="non-zero"):
        combine({"a": block([1, 2])}, FusionConfig())


def test_weight_naming_an_absent_block_raises() -> None:
    config = FusionConfig(weights={"a": 1.0, "b": 0.5})
    with pytest.raises(ValueError, match="b"):
        combine({"a": block([1, 2])}, config)
    with pytest.raises(ValueError, match="b"):
        FilledBlocks({"a": block([0, 1])}).combine(config)


def _reference(normed: dict[str, np.ndarray], config: FusionConfig) -> np.ndarray:
    """The fusion formula cell by cell: bias + sum of w * (score, or the row's fill)."""
    out = np.full(next(iter(normed.values())).shape, np.nan)
    for u, i in np.ndindex(out.shape):
        if not any(np.isfinite(normed[n][u, i]) for n, w in config.weights.items() if w):
            continue
        out[u, i] = config.bias
        for name, weight in config.weights.items():
            row = normed[name][u]
            seen = row[np.isfinite(row)]
            fill = 0.0 if not len(seen) else (seen.mean() if config.missing == "mean"
                                              else seen.min())
            out[u, i] += weight * (row[i] if np.isfinite(row[i]) else fill)
    return out


def test_filled_blocks_follow_the_formula_under_every_config() -> None:
    rng = np.random.default_rng(3)
    raw = {n: rng.normal(size=(5, 8)).astype(np.float32) for n in "abc"}
    raw["b"][rng.random((5, 8)) < 0.3] = NAN
    raw["b"][2] = NAN  # a row source b cannot score at all: it fills 0
    raw["c"][:, 3] = NAN
    for normaliser in ("zscore", "rank", "minmax"):
        normed = {n: normalise(v, normaliser) for n, v in raw.items()}
        blocks = FilledBlocks(normed)
        for missing in ("mean", "min"):
            config = FusionConfig(weights={"a": 0.2, "b": 0.5, "c": 0.0}, bias=-1.0,
                                  normaliser=normaliser, missing=missing)
            fused = blocks.combine(config)
            np.testing.assert_allclose(fused, _reference(normed, config), rtol=1e-5,
                                       atol=1e-6)
            np.testing.assert_allclose(combine(raw, config), fused)
            parts = blocks.parts(config)
            assert sorted(parts) == ["a", "b"]
            np.testing.assert_allclose(sum(parts.values()) + config.bias, fused, rtol=1e-6)
        only_b_c = FusionConfig(weights={"b": 1.0, "c": 1.0})  # both NaN at [2, 3] only
        assert np.flatnonzero(np.isnan(blocks.combine(only_b_c)).ravel()).tolist() == [19]


# --- FusionConfig ----------------------------------------------------------------------------

def test_config_round_trips_and_is_frozen() -> None:
    config = FusionConfig(weights={"ease": 0.7, "text": 0.3}, bias=0.1, normaliser="rank",
                          missing="min", readouts={"text": 4.0})
    dumped = config.model_dump()
    assert dumped == {"weights": {"ease": 0.7, "text": 0.3}, "bias": 0.1, "normaliser": "rank",
                      "missing": "min", "readouts": {"text": 4.0}}
    assert FusionConfig.model_validate(dumped) == config
    assert FusionConfig.model_validate_json(config.model_dump_json()) == config
    with pytest.raises(ValidationError):
        config.bias = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("bad", [{"normaliser": "softmax"}, {"missing": "zero"},
                                 {"weights": {"a": "heavy"}}, {"unknown_field": 1}])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        FusionConfig.model_validate(bad)


# --- WeightedFusion --------------------------------------------------------------------------

N_USERS, N_ITEMS = 6, 8


@pytest.fixture
def data():
    return make_data(N_USERS, N_ITEMS, random_pairs(N_USERS, N_ITEMS, 3, seed=5))


def values(seed: int, cold_item: int | None = None) -> np.ndarray:
    out = np.random.default_rng(seed).normal(size=(N_USERS, N_ITEMS)).astype(np.float32)
    if cold_item is not None:
        out[:, cold_item] = NAN
    return out


def test_fusion_scores_equal_combine_of_sources(data) -> None:
    va, vb = values(1, cold_item=2), values(2)
    config = FusionConfig(weights={"a": 0.3, "b": 0.9}, bias=0.5, missing="min")
    fusion = WeightedFusion(config, {"a": FixedScorer(va), "b": FixedScorer(vb)}).train(data)
    scores = fusion.score(["u3", "nobody", "u0"])
    expected = combine({"a": va[[3, 0]], "b": vb[[3, 0]]}, config)
    np.testing.assert_allclose(scores.values[[0, 2]], expected, rtol=1e-6)
    assert np.isnan(scores.values[1]).all()
    assert scores.items == data.items


def test_zero_weight_source_is_never_scored(data) -> None:
    idle = ExplodingScorer(values(9))
    used = FixedScorer(values(1))
    fusion = WeightedFusion(FusionConfig(weights={"used": 1.0, "idle": 0.0}),
                            {"used": used, "idle": idle}).train(data)
    fusion.score(data.users.ids)
    assert used.calls == [N_USERS] and idle.calls == []
    # a source absent from the weights is not scored either
    unlisted = WeightedFusion(FusionConfig(weights={"used": 1.0}),
                              {"used": used, "idle": idle}).train(data)
    unlisted.score(["u1"])


def test_untrained_sources_are_trained_by_the_fusion(data) -> None:
    source = FixedScorer(values(1))
    assert not source.is_trained()
    WeightedFusion(FusionConfig(weights={"a": 1.0}), {"a": source}).train(data)
    assert source.is_trained() and source.items == data.items


def test_unknown_source_in_weights_raises() -> None:
    with pytest.raises(ValueError, match="unknown sources.*'c'"):
        WeightedFusion(FusionConfig(weights={"a": 1.0, "c": 0.5}),
                       {"a": FixedScorer(values(1))})


@pytest.mark.parametrize("side", ["users", "items"])
def test_source_trained_over_other_vocabularies_raises(data, side: str) -> None:
    other = make_data(N_USERS, N_ITEMS, random_pairs(N_USERS, N_ITEMS, 3, seed=5))
    renamed = Vocabulary([f"x{i}" for i in range(N_USERS if side == "users" else N_ITEMS)])
    other = type(other)(other.matrix, renamed if side == "users" else other.users,
                        renamed if side == "items" else other.items)
    foreign = FixedScorer(values(1)).train(other)
    fusion = WeightedFusion(FusionConfig(weights={"a": 1.0, "b": 1.0}),
                            {"a": FixedScorer(values(2)), "b": foreign})
    with pytest.raises(ValueError, match="'b'.*other vocabularies"):
        fusion.train(data)


def test_with_config_reuses_trained_sources(data) -> None:
    va, vb = values(1), values(2)
    fusion = WeightedFusion(FusionConfig(weights={"a": 1.0, "b": 0.0}),
                            {"a": FixedScorer(va), "b": FixedScorer(vb)}).train(data)
    other = fusion.with_config(FusionConfig(weights={"a": 0.0, "b": 1.0}))
    assert other.is_trained() and other.sources["b"] is fusion.sources["b"]
    np.testing.assert_allclose(other.score(["u2"]).values, normalise(vb[[2]], "zscore"),
                               atol=1e-6)
    np.testing.assert_allclose(fusion.score(["u2"]).values, normalise(va[[2]], "zscore"),
                               atol=1e-6)


def test_bias_never_changes_the_ranking(data) -> None:
    sources = {"a": FixedScorer(values(1)), "b": FixedScorer(values(2, cold_item=4))}
    base = WeightedFusion(FusionConfig(weights={"a": 0.4, "b": 0.6}), sources).train(data)
    shifted = base.with_config(base.config.model_copy(update={"bias": 5.0}))
    x, y = base.score(data.users.ids).values, shifted.score(data.users.ids).values
    np.testing.assert_allclose(y - x, 5.0, rtol=1e-5)
    np.testing.assert_array_equal(np.argsort(-x, axis=1), np.argsort(-y, axis=1))


class TestWeightedFusionContract(ScorerContract):
    """The fusion is a scorer like any other (over EASE and MostPop on the checkerboard)."""

    def make_scorer(self) -> Scorer:
        return WeightedFusion(FusionConfig(weights={"ease": 1.0, "pop": 0.2}),
                              {"ease": EASE(EASEConfig(l2=10.0)), "pop": MostPop()})
