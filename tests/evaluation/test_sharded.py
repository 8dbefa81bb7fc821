"""Evaluation in user shards (test_rows + rank_users + evaluate(ranked=...)), user sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys_core.evaluation import evaluator as E
from recsys_core.evaluation.evaluator import batch_size_for, evaluate, rank_users
from tests.evaluation.conftest import make_data


@pytest.fixture
def parts():
    rng = np.random.default_rng(3)
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 40, 600), rng.integers(0, 30, 600),
                                              strict=True)}
    pairs = sorted(pairs)
    test = [p for n, p in enumerate(pairs) if n % 4 == 0 or p[1] >= 26]  # items 26.. are cold
    train = [p for n, p in enumerate(pairs) if n % 4 and p[1] < 26]
    return make_data(40, 30, train), make_data(40, 30, test)


@pytest.mark.parametrize("cold", [False, True])
def test_ranking_in_shards_gives_the_same_evaluation(parts, fixed_scorer, cooc_scorer, cold
                                                     ) -> None:
    train, test = parts
    values = np.random.default_rng(5).standard_normal((40, 30))
    scorers = {"fixed": fixed_scorer(values, train), "cooc": cooc_scorer(train)}
    whole = evaluate(scorers, train, test, k=5, cold_candidates=cold)
    rows = E.test_rows(train, test)
    cold_items = E.cold_candidate_items(train, test) if cold else None
    shards = [rank_users(scorers, train, rows[start:start + 7], 5, cold_items=cold_items)
              for start in range(0, len(rows), 7)]
    ranked = {ranking: {name: np.concatenate([s[ranking][name] for s in shards])
                        for name in scorers} for ranking in shards[0]}
    assert set(ranked) == ({E.FULL, E.COLD_CANDIDATES} if cold else {E.FULL})
    if cold:
        np.testing.assert_array_equal(E.cold_candidate_items(train, test), [26, 27, 28, 29])
        assert set(ranked[E.COLD_CANDIDATES]["fixed"].ravel()) <= {26, 27, 28, 29, -1}
    sharded = evaluate(scorers, train, test, k=5, ranked=ranked, cold_candidates=cold)
    assert sharded.metrics == whole.metrics
    assert json.dumps(sharded.segments) == json.dumps(whole.segments)  # NaN-aware
    assert (E.COLD_CANDIDATES in whole.segments) == cold
    for name in scorers:
        np.testing.assert_array_equal(sharded.topk[name], whole.topk[name])


def test_ranked_lists_of_the_wrong_shape_are_refused(parts, fixed_scorer) -> None:
    train, test = parts
    scorers = {"fixed": fixed_scorer(np.zeros((40, 30)), train)}
    with pytest.raises(ValueError, match="shape"):
        evaluate(scorers, train, test, k=5,
                 ranked={E.FULL: {"fixed": np.zeros((3, 5), dtype=np.int32)}})


def test_ranked_without_the_cold_candidate_ranking_is_refused(parts, fixed_scorer) -> None:
    train, test = parts
    scorers = {"fixed": fixed_scorer(np.zeros((40, 30)), train)}
    ranked = rank_users(scorers, train, E.test_rows(train, test), 5)
    with pytest.raises(ValueError, match="cold_candidates"):
        evaluate(scorers, train, test, k=5, ranked=ranked, cold_candidates=True)


def test_max_users_evaluates_a_seeded_sample(parts, cooc_scorer) -> None:
    train, test = parts
    scorers = {"cooc": cooc_scorer(train)}
    everyone = E.test_rows(train, test)
    sample = E.test_rows(train, test, max_users=10)
    assert len(sample) == 10 and set(sample) <= set(everyone)
    np.testing.assert_array_equal(sample, E.test_rows(train, test, max_users=10))
    evaluation = evaluate(scorers, train, test, k=5, max_users=10)
    assert evaluation.n_users["all"] == 10
    np.testing.assert_array_equal(evaluation.users["all"], train.users.id(sample))
    assert len(E.test_rows(train, test, max_users=10_000)) == len(everyone)


def test_blocks_shrink_with_the_catalogue() -> None:
    assert batch_size_for(1000) == 1024
    assert batch_size_for(250_000) == 64
    assert batch_size_for(10**9) == 16
