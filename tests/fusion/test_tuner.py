from __future__ import annotations

import numpy as np
import pytest

from recsys_core.data.interactions import InteractionData
from recsys_core.evaluation.metrics import per_user
from recsys_core.evaluation.ranking import exclude_seen, top_k
from recsys_core.fusion.tuner import Carve, clears, refine, tune
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from tests.fusion.helpers import FixedScorer, make_data, matrix_of

N_USERS, N_ITEMS, K, TRIALS = 30, 40, 5, 8


def split_pairs(seed: int) -> tuple[list, list, list]:
    """Per user: 6 fit items, 2 validation items, 2 'test' items, all distinct."""
    rng = np.random.default_rng(seed)
    fit, val, test = [], [], []
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS, size=10, replace=False)
        fit += [(u, int(i)) for i in items[:6]]
        val += [(u, int(i)) for i in items[6:8]]
        test += [(u, int(i)) for i in items[8:]]
    return fit, val, test


@pytest.fixture(scope="module")
def parts() -> tuple[InteractionData, InteractionData, InteractionData]:
    fit_pairs, val_pairs, test_pairs = split_pairs(seed=11)
    fit = make_data(N_USERS, N_ITEMS, fit_pairs)
    return (fit, fit.with_matrix(matrix_of(N_USERS, N_ITEMS, val_pairs)),
            fit.with_matrix(matrix_of(N_USERS, N_ITEMS, test_pairs)))


def oracle(target: InteractionData, strength: float, seed: int) -> np.ndarray:
    """Noise plus ``strength`` on the target's relevant items: informative about ``target``."""
    noise = np.random.default_rng(seed).normal(size=(N_USERS, N_ITEMS))
    return (noise + strength * target.matrix.toarray()).astype(np.float32)


def fused(sources: dict[str, np.ndarray], fit: InteractionData) -> WeightedFusion:
    scorers = {name: FixedScorer(values) for name, values in sources.items()}
    return WeightedFusion(FusionConfig(weights=dict.fromkeys(sources, 1.0)), scorers).train(fit)


def ndcg_on(fusion: WeightedFusion, config: FusionConfig, fit: InteractionData,
            held_out: InteractionData) -> float:
    """NDCG@K of ``config`` on ``held_out``, computed independently of the tuner."""
    rows = np.flatnonzero(np.diff(held_out.matrix.indptr) > 0)
    values = fusion.with_config(config).score(fit.users.id(rows)).values
    exclude_seen(values, fit.matrix, rows)
    return float(per_user(top_k(values, K), held_out.matrix[rows], K)["ndcg"].mean())


def test_informative_source_outweighs_noise(parts) -> None:
    fit, val, _ = parts
    fusion = fused({"noise": oracle(val, 0.0, seed=1), "signal": oracle(val, 2.0, seed=2)}, fit)
    result = tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=0)
    assert result.single["signal"] > result.single["noise"] + 0.3
    assert result.config.weights["signal"] > result.config.weights["noise"]
    assert result.ndcg >= max(result.single.values())
    assert result.trials == 2 + 1 + TRIALS
    assert set(result.config.weights) == {"noise", "signal"}
    # the reported number is that config's validation NDCG
    assert result.ndcg == pytest.approx(ndcg_on(fusion, result.config, fit, val), abs=1e-9)
    assert result.single["signal"] == pytest.approx(
        ndcg_on(fusion, FusionConfig(weights={"signal": 1.0}), fit, val), abs=1e-9)


def test_tuner_scores_on_the_validation_it_is_given_not_test(parts) -> None:
    fit, val, test = parts
    fusion = fused({"knows_val": oracle(val, 3.0, seed=3),
                    "knows_test": oracle(test, 3.0, seed=4)}, fit)
    on_val = tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=0)
    assert on_val.config.weights["knows_val"] > on_val.config.weights["knows_test"]
    val_score = ndcg_on(fusion, on_val.config, fit, val)
    test_score = ndcg_on(fusion, on_val.config, fit, test)
    assert on_val.ndcg == pytest.approx(val_score, abs=1e-9)
    assert test_score < val_score - 0.3  # the two held-out sets disagree, and it used val
    assert on_val.single["knows_val"] > on_val.single["knows_test"]
    # the same sources tuned on the other set make the opposite choice
    on_test = tune([Carve(fusion, fit, test)], k=K, trials=TRIALS, seed=0)
    assert on_test.config.weights["knows_test"] > on_test.config.weights["knows_val"]
    assert on_test.ndcg == pytest.approx(ndcg_on(fusion, on_test.config, fit, test), abs=1e-9)


def test_seen_items_are_excluded_while_tuning(parts) -> None:
    fit, val, _ = parts
    # ranks every training item above the validation items: perfect only if seen are dropped
    seen_first = (10.0 * fit.matrix.toarray() + 5.0 * val.matrix.toarray()).astype(np.float32)
    fusion = fused({"seen_first": seen_first, "noise": oracle(val, 0.0, seed=5)}, fit)
    result = tune([Carve(fusion, fit, val)], k=K, trials=2, seed=0)
    assert result.single["seen_first"] == pytest.approx(1.0)
    assert result.ndcg == pytest.approx(1.0)


def test_same_seed_same_result(parts) -> None:
    fit, val, _ = parts
    fusion = fused({"a": oracle(val, 1.0, seed=6), "b": oracle(val, 0.5, seed=7)}, fit)
    first = tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=3)
    again = tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=3)
    assert first.config == again.config and first.ndcg == again.ndcg


def test_empty_validation_raises(parts) -> None:
    fit, val, _ = parts
    fusion = fused({"a": oracle(val, 1.0, seed=6)}, fit)
    empty = fit.with_matrix(matrix_of(N_USERS, N_ITEMS, []))
    with pytest.raises(ValueError, match="no users"):
        tune([Carve(fusion, fit, empty)], k=K, trials=1)


def test_refine_climbs_one_weight_at_a_time_and_keeps_only_gains() -> None:
    target = {"a": 0.25, "b": 1.0, "c": 0.0}
    calls = []

    def objective(config: FusionConfig) -> float:
        calls.append(config)
        return -sum((config.weights[n] - t) ** 2 for n, t in target.items())

    start = FusionConfig(weights={"a": 1.0, "b": 1.0, "c": 0.5})
    config, value = refine(start, objective(start), objective)
    assert config.weights == pytest.approx(target)
    assert value == pytest.approx(0.0)
    stuck = FusionConfig(weights=target)
    assert refine(stuck, 0.0, objective) == (stuck, 0.0)  # no strict gain: unchanged


def test_clears_needs_a_gain_beyond_the_paired_noise() -> None:
    rng = np.random.default_rng(0)
    current = rng.uniform(size=400)
    noisy = current + rng.normal(0.0, 0.3, size=400)
    noisy += 0.001 - (noisy - current).mean()  # mean gain 0.001, standard error about 0.015
    assert not clears(noisy, current, 1.0)
    assert clears(noisy, current, 0.0)  # any strict mean gain at 0 standard errors
    steady = current + 0.01  # the same small gain for every user: no spread, clear
    assert clears(steady, current, 2.0)
    assert not clears(current - 0.01, current, 0.0)
    assert clears(0.5, 0.4, 3.0) and not clears(0.4, 0.4, 0.0)  # one number: strict gain


def test_clears_counts_a_user_on_two_carves_once() -> None:
    # 100 users, each with the same difference on both carves: gain 0.18, standard deviation
    # 1 over the users, so t = 0.18 / (1 / sqrt(100)) = 1.8. Read as 200 independent users,
    # t = 1.8 * sqrt(2) = 2.55 would clear a 2-SE bar.
    z = np.random.default_rng(3).normal(size=100)
    diff = 0.18 + (z - z.mean()) / z.std(ddof=1)
    current = [np.zeros(100), np.zeros(100)]
    values = [diff, diff.copy()]
    users = [np.arange(100), np.arange(100)]
    assert clears(values, current, 2.0)  # no users given: every value its own user
    assert not clears(values, current, 2.0, users)
    assert clears(values, current, 1.7, users)
    # other users on the second carve: 200 distinct users, the unclustered error again
    assert clears(values, current, 2.0, [np.arange(100), np.arange(100, 200)])
    with pytest.raises(ValueError, match="users"):
        clears(values, current, 2.0, [np.arange(100)])


def test_refine_rejects_gains_within_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(size=300)

    def jitter(weight: float) -> np.ndarray:
        return np.random.default_rng(int(weight * 1e6)).normal(0.0, 0.2, size=300)

    def objective(config: FusionConfig) -> np.ndarray:
        # "b" only adds noise around a tiny mean gain; "a" at 2.0 is a clear gain for all
        b = config.weights["b"]
        gain = 0.0 if b == 0.5 else 0.002 + jitter(b)
        return base + gain + (0.05 if config.weights["a"] == 2.0 else 0.0)

    start = FusionConfig(weights={"a": 1.0, "b": 0.5})
    config, values = refine(start, objective(start), objective, min_gain_se=2.0)
    assert config.weights == {"a": 2.0, "b": 0.5}
    assert np.mean(values) == pytest.approx(base.mean() + 0.05)
    loose, _ = refine(start, objective(start), objective, min_gain_se=0.0)
    assert loose.weights["b"] != 0.5  # without the noise bar a lucky jitter is kept


def test_a_weak_gain_over_the_best_single_source_is_not_kept(parts) -> None:
    fit, val, _ = parts
    fusion = fused({"signal": oracle(val, 1.5, seed=8), "noise": oracle(val, 0.0, seed=9)}, fit)
    loose = tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=0, min_gain_se=0.0)
    strict = tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=0, min_gain_se=50.0)
    assert strict.config.weights == {"signal": 1.0, "noise": 0.0}
    assert strict.ndcg == pytest.approx(strict.single["signal"])
    assert loose.ndcg > strict.ndcg  # the lucky noise mix wins on validation when allowed
    assert loose.config.weights["noise"] > 0


class ReadableScorer(FixedScorer):
    """Scores with one fixed matrix per readout; ``train`` leaves readout 0."""

    def __init__(self, by_readout: dict[float, np.ndarray]) -> None:
        super().__init__(by_readout[0.0])
        self.by_readout, self.readout = by_readout, 0.0

    def readouts(self) -> tuple[float, ...]:
        return tuple(self.by_readout)

    def read(self, readout: float) -> ReadableScorer:
        clone = ReadableScorer(self.by_readout)
        clone.users, clone.items, clone.readout = self.users, self.items, readout
        clone.values = self.by_readout[readout]
        return clone


def test_a_readout_is_chosen_on_validation_and_kept_by_the_fusion(parts) -> None:
    fit, val, test = parts
    readable = ReadableScorer({0.0: oracle(test, 3.0, seed=5), 4.0: oracle(val, 0.5, seed=6),
                               16.0: oracle(val, 3.0, seed=7)})
    fusion = WeightedFusion(FusionConfig(weights={"seq": 1.0, "noise": 1.0}),
                            {"seq": readable.train(fit),
                             "noise": FixedScorer(oracle(val, 0.0, seed=8))}).train(fit)
    result = tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=0)
    # readout 16 knows the validation best; readout 0 (as trained) knows test only
    assert result.config.readouts == {"seq": 16.0}
    assert result.single["seq"] == pytest.approx(
        ndcg_on(fusion, FusionConfig(weights={"seq": 1.0}, readouts={"seq": 16.0}), fit, val),
        abs=1e-9)
    final = WeightedFusion(result.config, {"seq": readable, "noise": FixedScorer(
        oracle(val, 0.0, seed=8))}).train(fit)
    assert final.sources["seq"].readout == 16.0  # type: ignore[attr-defined]
    assert readable.readout == 0.0  # the given source is not changed


def test_a_readout_that_does_not_clear_the_noise_is_not_taken(parts) -> None:
    fit, val, _ = parts
    same = oracle(val, 2.0, seed=9)
    readable = ReadableScorer({0.0: same, 4.0: same + np.float32(1e-3) * oracle(val, 0.0, 10)})
    fusion = WeightedFusion(FusionConfig(weights={"seq": 1.0}), {"seq": readable}).train(fit)
    assert tune([Carve(fusion, fit, val)], k=K, trials=TRIALS, seed=0).config.readouts == {}


def test_a_readout_of_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sources"):
        WeightedFusion(FusionConfig(weights={"a": 1.0}, readouts={"b": 4.0}),
                       {"a": FixedScorer(np.zeros((2, 2)))})
