from __future__ import annotations

import math

import numpy as np
import pytest

from recsys_core.data.vocab import Vocabulary
from recsys_core.evaluation import evaluator as E
from recsys_core.evaluation.evaluator import SEGMENTS, evaluate
from recsys_core.evaluation.metrics import metric_keys
from recsys_core.evaluation.report import build_report
from recsys_core.scoring import Scores


def random_case(data_factory, n_users: int = 50, n_items: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    train_pairs, test_pairs = [], []
    for u in range(n_users):
        items = rng.choice(n_items, size=int(rng.integers(2, 12)), replace=False)
        cut = max(1, len(items) * 3 // 4)
        train_pairs += [(u, int(i)) for i in items[:cut]]
        test_pairs += [(u, int(i)) for i in items[cut:]]
    return (data_factory(n_users, n_items, train_pairs), data_factory(n_users, n_items, test_pairs),
            rng)


def test_report_keys_and_segments(data_factory, fixed_scorer) -> None:
    train, test, rng = random_case(data_factory)
    scorer = fixed_scorer(rng.normal(size=(50, 40)), train)
    result = evaluate({"model": scorer}, train, test, k=5)
    assert tuple(result.metrics["model"]) == metric_keys(5)
    assert set(result.segments) == set(SEGMENTS)
    for segment in SEGMENTS:
        assert tuple(result.segments[segment]["model"]) == metric_keys(5)
        assert len(result.users[segment]) == result.n_users[segment]
        assert result.user_values("model", "ndcg", segment).shape == (result.n_users[segment],)
    assert result.metrics is result.segments["all"] or result.metrics == result.segments["all"]
    assert result.topk["model"].shape == (result.n_users["all"], 5)


def test_seen_items_are_never_recommended(data_factory, fixed_scorer) -> None:
    # one user; saw item 0 in train, test item 1. Scores favour item 0 most.
    train = data_factory(1, 5, [(0, 0)])
    test = data_factory(1, 5, [(0, 1)])
    scorer = fixed_scorer(np.array([[10, 5, 1, 0, 0]]), train)
    result = evaluate({"m": scorer}, train, test, k=1)
    assert result.topk["m"].tolist() == [[1]]
    assert result.metrics["m"]["ndcg@1"] == 1.0
    assert result.metrics["m"]["precision@1"] == 1.0


def test_seen_exclusion_on_random_data(data_factory, fixed_scorer) -> None:
    train, test, rng = random_case(data_factory, seed=3)
    result = evaluate({"m": fixed_scorer(rng.normal(size=(50, 40)), train)}, train, test, k=10)
    users = train.users.index(result.users["all"])
    for row, u in zip(result.topk["m"], users, strict=True):
        seen = set(train.matrix[u].indices)
        assert not seen & set(row[row >= 0].tolist())


def test_nan_scores_are_not_recommended_and_all_nan_user_counts(data_factory, fixed_scorer
                                                               ) -> None:
    train = data_factory(2, 4, [(0, 0), (1, 0)])
    test = data_factory(2, 4, [(0, 1), (1, 2)])
    values = np.array([[0, np.nan, 1, 2], [np.nan] * 4], dtype=np.float32)
    result = evaluate({"m": fixed_scorer(values, train)}, train, test, k=2)
    assert result.n_users["all"] == 2
    assert result.topk["m"].tolist() == [[3, 2], [-1, -1]]
    assert result.user_values("m", "ndcg").tolist() == [0.0, 0.0]
    assert result.metrics["m"]["hit@2"] == 0.0
    assert result.metrics["m"]["coverage@2"] == pytest.approx(2 / 4)


def test_batching_does_not_change_results(data_factory, fixed_scorer) -> None:
    train, test, rng = random_case(data_factory, seed=5)
    values = rng.normal(size=(50, 40)).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    values[:, 3] = values[:, 4] = 0.5  # ties
    results = {}
    for batch_size in (1, 7, 1024):
        scorer = fixed_scorer(values, train)
        results[batch_size] = evaluate({"m": scorer}, train, test, k=10, batch_size=batch_size)
        assert max(scorer.calls) <= batch_size  # never more than a batch of users at once
    base = results[1024]
    for other in (results[1], results[7]):
        np.testing.assert_equal(other.segments, base.segments)  # NaN == NaN here
        assert np.array_equal(other.topk["m"], base.topk["m"])
        for segment in SEGMENTS:
            assert np.array_equal(other.users[segment], base.users[segment])
            for key, array in base.per_user[segment]["m"].items():
                assert np.array_equal(other.per_user[segment]["m"][key], array)


def test_checkerboard_withheld_item_ranks_first(data_factory, cooc_scorer) -> None:
    # user u likes items of u's parity; one of them per user is withheld for test. Co-occurrence
    # only links same-parity items, and the withheld one is the user's only unseen same-parity
    # item, so it must rank first.
    n = 20
    liked = {u: [i for i in range(n) if (u + i) % 2 == 0] for u in range(n)}
    withheld = {u: liked[u][u % len(liked[u])] for u in range(n)}
    train = data_factory(n, n, [(u, i) for u in range(n) for i in liked[u] if i != withheld[u]])
    test = data_factory(n, n, [(u, withheld[u]) for u in range(n)])
    result = evaluate({"cooc": cooc_scorer(train)}, train, test, k=10)
    m = result.metrics["cooc"]
    assert result.n_users["all"] == n
    assert m["ndcg@10"] == pytest.approx(1.0)
    assert m["hit@10"] == m["mrr@10"] == m["map@10"] == m["recall@10"] == 1.0
    assert m["precision@10"] == pytest.approx(0.1)
    assert result.topk["cooc"][:, 0].tolist() == [withheld[u] for u in range(n)]


def test_oracle_scorer_gets_perfect_ndcg(data_factory, fixed_scorer) -> None:
    train, test, rng = random_case(data_factory, seed=8)
    oracle = test.matrix.toarray() + 0.01 * rng.random((50, 40))
    noise = rng.random((50, 40))
    result = evaluate({"oracle": fixed_scorer(oracle, train), "noise": fixed_scorer(noise, train)},
                      train, test, k=10)
    assert result.metrics["oracle"]["ndcg@10"] == pytest.approx(1.0)
    assert result.metrics["oracle"]["map@10"] == pytest.approx(1.0)
    assert result.metrics["noise"]["ndcg@10"] < 1.0
    assert result.models == ["oracle", "noise"]
    assert result.best(exclude=()) == "oracle"
    assert result.best(exclude=("oracle",)) == "noise"


def test_segments_select_users_and_items(data_factory, fixed_scorer) -> None:
    # items 0..5; items 4 and 5 have no train interaction (cold).
    train_pairs = [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (3, 3), (0, 1)]
    # train popularity: item0=4, item1=2, item2=1, item3=1 -> total 8; head covering 80%:
    # item0 (4/8=.5), item1 (6/8=.75), item2 (7/8=.875) -> head {0, 1, 2}; tail {3, 4, 5}.
    test_pairs = [(0, 5), (0, 2), (1, 4), (2, 1), (3, 5)]
    train = data_factory(5, 6, train_pairs)
    test = data_factory(5, 6, test_pairs)
    scores = np.tile(np.array([0, 1, 2, 3, 4, 5], dtype=np.float32), (5, 1))  # item 5 first
    result = evaluate({"m": fixed_scorer(scores, train)}, train, test, k=2,
                      segments={"vip": np.array(["u1", "u3", "nobody"]),
                                "mask": np.array([True, False, False, False, False])})
    assert result.users["all"].tolist() == ["u0", "u1", "u2", "u3"]  # u4 has no test item
    assert result.users["cold_items"].tolist() == ["u0", "u1", "u3"]  # test items 5, 4, 5
    # cold_items evaluates on items {4, 5} only; every list is [5, 4] (u3 has seen 0..3):
    # u0 and u3 hit at rank 1 (ndcg 1), u1 (item 4) at rank 2: ndcg = (1/log2 3) / 1
    assert result.user_values("m", "ndcg", "cold_items").tolist() == pytest.approx(
        [1.0, 1 / np.log2(3), 1.0])
    # all segment for u0: ranked [5, 4], relevant {5, 2}: one hit at rank 1 -> ndcg < 1
    assert result.user_values("m", "ndcg", "all")[0] < 1.0
    # cold users: <= 3 train items -> u0 (2), u1 (1), u2 (1); u3 has 4
    assert result.users["cold_users"].tolist() == ["u0", "u1", "u2"]
    # long tail {3, 4, 5}: u0 (5), u1 (4), u3 (5); u2's only test item 1 is head
    assert result.users["long_tail"].tolist() == ["u0", "u1", "u3"]
    assert result.users["vip"].tolist() == ["u1", "u3"]
    assert result.users["mask"].tolist() == ["u0"]


def test_segment_name_clash_and_vocab_mismatch_raise(data_factory, fixed_scorer) -> None:
    train, test, rng = random_case(data_factory)
    scorer = fixed_scorer(rng.normal(size=(50, 40)), train)
    with pytest.raises(ValueError, match="built in"):
        evaluate({"m": scorer}, train, test, segments={"all": np.array(["u0"])})
    other = data_factory(50, 41, [(0, 0)])
    with pytest.raises(ValueError, match="vocabularies"):
        evaluate({"m": scorer}, train, other)


def test_test_pairs_seen_in_train_are_not_relevant(data_factory, fixed_scorer) -> None:
    train = data_factory(2, 4, [(0, 0), (1, 1)])
    test = data_factory(2, 4, [(0, 0), (0, 2), (1, 1)])  # (0,0) and (1,1) overlap train
    result = evaluate({"m": fixed_scorer(np.ones((2, 4)), train)}, train, test, k=1)
    assert result.users["all"].tolist() == ["u0"]  # u1's only test item was seen


def test_scores_over_another_item_order_are_aligned(data_factory) -> None:
    train = data_factory(1, 3, [(0, 0)])
    test = data_factory(1, 3, [(0, 2)])

    class Reversed:
        def score(self, users):
            items = Vocabulary(["i2", "i1", "i0"])
            return Scores(np.asarray(users, dtype=object), items,
                          np.array([[9.0, 1.0, 0.0]], dtype=np.float32))

    result = evaluate({"rev": Reversed()}, train, test, k=1)  # type: ignore[dict-item]
    assert result.topk["rev"].tolist() == [[2]]
    assert result.metrics["rev"]["hit@1"] == 1.0


def test_empty_segment_gives_nan_means(data_factory, fixed_scorer) -> None:
    train = data_factory(1, 3, [(0, 0), (0, 1)])
    test = data_factory(1, 3, [(0, 1), (0, 2)])  # (0,1) seen -> only item 2, which is cold
    result = evaluate({"m": fixed_scorer(np.zeros((1, 3)), train)}, train, test, k=2,
                      cold_user_max=1)
    assert result.n_users["cold_users"] == 0
    assert math.isnan(result.segments["cold_users"]["m"]["ndcg@2"])


def test_several_cutoffs_measure_one_ranking_at_each(data_factory, fixed_scorer) -> None:
    train, test, rng = random_case(data_factory, seed=5)
    scorer = fixed_scorer(rng.normal(size=(50, 40)), train)
    both = evaluate({"m": scorer}, train, test, k=[5, 3])
    assert (both.k, both.ks) == (5, (5, 3))  # the first is the main cut-off
    assert tuple(both.metrics["m"]) == (*metric_keys(5), *metric_keys(3))
    assert both.topk["m"].shape == (both.n_users["all"], 5)
    for k in (5, 3):
        alone = evaluate({"m": scorer}, train, test, k=k)
        np.testing.assert_array_equal(both.topk["m"][:, :k], alone.topk["m"])
        for segment in SEGMENTS:
            for key, value in alone.segments[segment]["m"].items():
                assert both.segments[segment]["m"][key] == pytest.approx(value, nan_ok=True)
            for key, values in alone.per_user[segment]["m"].items():
                np.testing.assert_array_equal(both.per_user[segment]["m"][key], values)
    assert both.metric_key("ndcg") == "ndcg@5" and both.metric_key("ndcg@3") == "ndcg@3"
    with pytest.raises(ValueError, match="unknown metric 'ndcg@4'"):
        both.metric_key("ndcg@4")
    with pytest.raises(ValueError, match="bad cut-off '0'"):
        evaluate({"m": scorer}, train, test, k=[5, 0])


def test_cold_candidates_rank_only_the_cold_test_items(data_factory, fixed_scorer) -> None:
    # items 0..5: 0, 1, 2 are warm (2 is also u0's test item), 3 and 4 are cold test items,
    # 5 was never touched: it has no training interaction but is no candidate (no test one).
    train = data_factory(2, 6, [(0, 0), (1, 1), (1, 2)])
    test = data_factory(2, 6, [(0, 2), (0, 3), (1, 4)])
    scores = np.array([[9, 8, 7, 1, 2, 10],    # u0 full: [5, 1] (0 seen); cold: [4, 3]
                       [0, 9, 5, 3, 6, 10]],   # u1 full: [5, 4] (1, 2 seen); cold: [4, 3]
                      dtype=np.float32)
    result = evaluate({"m": fixed_scorer(scores, train)}, train, test, k=2, cold_candidates=True)
    assert result.users["cold_candidates"].tolist() == ["u0", "u1"]
    # u0 (relevant {3}) hits at rank 2: 1/log2(3); u1 (relevant {4}) at rank 1: 1.
    third = 1 / np.log2(3)
    assert result.user_values("m", "ndcg", "cold_candidates").tolist() == pytest.approx(
        [third, 1.0])
    cold = result.segments["cold_candidates"]["m"]
    assert cold["ndcg@2"] == pytest.approx((third + 1) / 2)
    assert cold["mrr@2"] == pytest.approx(0.75)
    assert cold["precision@2"] == pytest.approx(0.5)
    assert cold["recall@2"] == cold["hit@2"] == 1.0
    assert cold["map@2"] == pytest.approx(0.75)
    assert cold["coverage@2"] == 1.0  # both candidates recommended, of 2 candidates
    report = build_report("tiny", "cold_items", 2, result, None, {}, None).to_json()
    assert report["segments"]["cold_candidates"]["m"]["ndcg@2"] == pytest.approx((third + 1) / 2)
    # the full ranking puts item 5 first: cold_items finds u1's item 4 at rank 2 only
    assert result.user_values("m", "ndcg", "cold_items").tolist() == pytest.approx([0.0, third])
    assert result.topk["m"].tolist() == [[5, 1], [5, 4]]
    np.testing.assert_array_equal(E.cold_candidate_items(train, test), [3, 4])
    assert "cold_candidates" not in evaluate({"m": fixed_scorer(scores, train)}, train, test,
                                             k=2).segments
