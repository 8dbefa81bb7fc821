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
    test = [p for n, p in enumerate(pairs) if n % 4 == 0]
    train = [p for n, p in enumerate(pairs) if n % 4]
    return make_data(40, 30, train), make_data(40, 30, test)


def test_ranking_in_shards_gives_the_same_evaluation(parts, fixed_scorer, cooc_scorer) -> None:
    train, test = parts
    values = np.random.default_rng(5).standard_normal((40, 30))
    scorers = {"fixed": fixed_scorer(values, train), "cooc": cooc_scorer(train)}
    whole = evaluate(scorers, train, test, k=5)
    rows = E.test_rows(train, test)
    shards = [rank_users(scorers, train, rows[start:start + 7], 5)
              for start in range(0, len(rows), 7)]
    ranked = {name: np.concatenate([s[name] for s in shards]) for name in scorers}
    sharded = evaluate(scorers, train, test, k=5, ranked=ranked)
    assert sharded.metrics == whole.metrics
    assert json.dumps(sharded.segments) == json.dumps(whole.segments)  # NaN-aware
    for name in scorers:
        np.testing.assert_array_equal(sharded.topk[name], whole.topk[name])


def test_ranked_lists_of_the_wrong_shape_are_refused(parts, fixed_scorer) -> None:
    train, test = parts
    scorers = {"fixed": fixed_scorer(np.zeros((40, 30)), train)}
    with pytest.raises(ValueError, match="shape"):
        evaluate(scorers, train, test, k=5, ranked={"fixed": np.zeros((3, 5), dtype=np.int32)})


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
