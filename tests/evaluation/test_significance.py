from __future__ import annotations

import numpy as np
import pytest

from recsys_core.evaluation.evaluator import evaluate
from recsys_core.evaluation.significance import paired_test


@pytest.fixture
def evaluation(data_factory, fixed_scorer):
    rng = np.random.default_rng(2)
    n_users, n_items = 200, 60
    train_pairs, test_pairs = [], []
    for u in range(n_users):
        items = rng.choice(n_items, size=6, replace=False)
        train_pairs += [(u, int(i)) for i in items[:4]]
        test_pairs += [(u, int(i)) for i in items[4:]]
    train = data_factory(n_users, n_items, train_pairs)
    test = data_factory(n_users, n_items, test_pairs)
    noise = rng.random((n_users, n_items))
    good = test.matrix.toarray() * (rng.random((n_users, 1)) < 0.6) + noise
    scorers = {"good": fixed_scorer(good, train), "noise": fixed_scorer(noise, train),
               "noise_again": fixed_scorer(noise, train)}
    return evaluate(scorers, train, test, k=10)


def test_clearly_better_model_is_significant(evaluation) -> None:
    result = paired_test(evaluation, "good", "noise", n_boot=500)
    assert result.metric == "ndcg@10" and result.n_users == 200
    assert result.mean_diff == pytest.approx(result.mean_a - result.mean_b)
    assert 0 < result.ci_low < result.mean_diff < result.ci_high
    assert result.p_bootstrap < 0.01 and result.p_wilcoxon < 0.01
    assert result.significant()


def test_identical_models_are_not_different(evaluation) -> None:
    result = paired_test(evaluation, "noise", "noise_again", metric="recall@10", n_boot=200)
    assert result.mean_diff == 0.0
    assert result.ci_low == result.ci_high == 0.0
    assert result.p_bootstrap == 1.0 and result.p_wilcoxon == 1.0
    assert not result.significant()


def test_bootstrap_is_seeded(evaluation) -> None:
    a = paired_test(evaluation, "good", "noise", n_boot=300, seed=1)
    b = paired_test(evaluation, "good", "noise", n_boot=300, seed=1)
    assert a == b


def test_against_best_other_source(evaluation) -> None:
    best = evaluation.best(exclude=("good",))
    assert best in ("noise", "noise_again")
    assert paired_test(evaluation, "good", best, n_boot=100).mean_diff > 0


def test_unknown_metric_raises(evaluation) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        paired_test(evaluation, "good", "noise", metric="auc")
