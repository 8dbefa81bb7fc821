from __future__ import annotations

import math

import numpy as np
import pytest

from recsys_core.evaluation import metrics as M

LOG2_3 = math.log2(3)


def one_user(ranked: list[int], relevant: set[int], k: int, n_items: int = 20
             ) -> dict[str, float]:
    values = M.per_user(np.array([ranked]), M.relevance_matrix([relevant], n_items), k)
    return {name: float(v[0]) for name, v in values.items()}


def test_ranked_abc_relevant_bd() -> None:
    # a, b, c, d = items 0, 1, 2, 3; ranked [a, b, c] at K=3; relevant {b, d}.
    # hits = [0, 1, 0]
    # precision = 1 hit / K=3 = 1/3; recall = 1 / |rel|=2 = 1/2
    # F1 = 2 * (1/3) * (1/2) / (1/3 + 1/2) = (1/3) / (5/6) = 2/5
    # DCG = 1/log2(2+1) (hit at rank 2); IDCG over min(2, 3) = 2 hits: 1/log2(2) + 1/log2(3)
    # NDCG = (1/log2 3) / (1 + 1/log2 3) = 0.63093 / 1.63093 = 0.386853
    # AP = (P@2 = 1/2) / min(|rel|=2, K=3) = 0.25; hit = 1; MRR = 1/2
    m = one_user([0, 1, 2], {1, 3}, k=3)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 / 5)
    assert m["ndcg"] == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    assert m["ndcg"] == pytest.approx(0.386853, abs=1e-6)
    assert m["map"] == pytest.approx(0.25)
    assert m["hit"] == 1.0
    assert m["mrr"] == pytest.approx(0.5)


def test_two_hits_in_five() -> None:
    # ranked [0, 1, 2, 3, 4] at K=5; relevant {0, 2, 9}; hits = [1, 0, 1, 0, 0]
    # precision = 2/5; recall = 2/3; F1 = 2 * .4 * (2/3) / (.4 + 2/3) = (8/15) / (16/15) = 0.5
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/2 = 2.130930; NDCG = 0.703918
    # AP = (P@1 = 1 + P@3 = 2/3) / min(3, 5) = (5/3) / 3 = 5/9; hit = 1; MRR = 1
    m = one_user([0, 1, 2, 3, 4], {0, 2, 9}, k=5)
    assert m["precision"] == pytest.approx(0.4)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(0.5)
    assert m["ndcg"] == pytest.approx(1.5 / (1.5 + 1 / LOG2_3))
    assert m["ndcg"] == pytest.approx(0.703918, abs=1e-6)
    assert m["map"] == pytest.approx(5 / 9)
    assert m["hit"] == 1.0
    assert m["mrr"] == 1.0


def test_more_relevant_than_k_normalises_by_k() -> None:
    # K=2, ranked [0, 1], relevant {0, 1, 2, 3}: both slots hit.
    # precision 1; recall 2/4; ideal DCG over min(4, 2) = 2 -> NDCG 1; AP = (1 + 1) / 2 = 1
    m = one_user([0, 1], {0, 1, 2, 3}, k=2)
    assert m["precision"] == 1.0
    assert m["recall"] == 0.5
    assert m["f1"] == pytest.approx(2 * 0.5 / 1.5)
    assert m["ndcg"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx(1.0)
    assert m["mrr"] == 1.0


def test_miss_and_empty_slots_score_zero() -> None:
    assert all(v == 0.0 for v in one_user([5, 6], {1}, k=2).values())
    assert all(v == 0.0 for v in one_user([-1, -1], {0}, k=2).values())


def test_narrow_list_is_padded_to_k() -> None:
    # Only 2 items to rank, K=3: ranked [1, 0], relevant {0}. hit at rank 2.
    # precision = 1/3 (empty third slot is a miss); NDCG = (1/log2 3) / 1; MRR = 1/2
    m = one_user([1, 0], {0}, k=3, n_items=2)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["ndcg"] == pytest.approx(1 / LOG2_3)
    assert m["map"] == pytest.approx(0.5)
    assert m["mrr"] == pytest.approx(0.5)


def test_user_without_relevant_items_scores_zero() -> None:
    values = M.per_user(np.array([[0, 1]]), M.relevance_matrix([set()], 5), 2)
    assert all(v[0] == 0.0 for v in values.values())


def test_vectorised_over_users_matches_one_by_one() -> None:
    rng = np.random.default_rng(0)
    topk = np.array([rng.permutation(30)[:5] for _ in range(40)])
    relevant = [set(rng.choice(30, size=rng.integers(1, 8), replace=False)) for _ in range(40)]
    together = M.per_user(topk, M.relevance_matrix(relevant, 30), 5)
    for u in range(40):
        alone = one_user(list(topk[u]), relevant[u], 5, n_items=30)
        for name in M.PER_USER:
            assert together[name][u] == pytest.approx(alone[name])


def test_coverage_counts_distinct_items() -> None:
    # items {0, 1, 2} recommended out of 10; -1 slots ignored
    assert M.coverage(np.array([[0, 1], [1, 2], [-1, -1]]), 10) == pytest.approx(0.3)
    assert M.coverage(np.empty((0, 3)), 10) == 0.0


def test_summarize_keys_and_means() -> None:
    values = {name: np.array([0.0, 1.0]) for name in M.PER_USER}
    summary = M.summarize(values, 0.25, 10)
    assert tuple(summary) == M.metric_keys(10) == (
        "ndcg@10", "precision@10", "recall@10", "f1@10", "map@10", "hit@10", "mrr@10",
        "coverage@10",
    )
    assert summary["ndcg@10"] == 0.5
    assert summary["coverage@10"] == 0.25
    empty = M.summarize({name: np.array([]) for name in M.PER_USER}, 0.0, 10)
    assert math.isnan(empty["ndcg@10"]) and math.isnan(empty["coverage@10"])


def test_f1_is_mean_of_per_user_f1() -> None:
    # user 0: ranked [0, 1], rel {0}: P = 1/2, R = 1 -> F1 = 2/3
    # user 1: ranked [2, 3], rel {2, 3, 4, 5}: P = 1, R = 1/2 -> F1 = 2/3
    # mean of per-user F1 = 2/3, whereas F1 of mean P (3/4) and mean R (3/4) would be 3/4.
    values = M.per_user(np.array([[0, 1], [2, 3]]),
                        M.relevance_matrix([{0}, {2, 3, 4, 5}], 10), 2)
    assert values["f1"] == pytest.approx([2 / 3, 2 / 3])
    assert M.summarize(values, 0.0, 2)["f1@2"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("given", "expected"), [
    (10, (10,)),                        # the flow parameter and the deployments' k: 10
    ([10, 20], (10, 20)),
    ("10,20", (10, 20)),
    (["20", " 5 , 10", "20"], (20, 5, 10)),  # in the order given, each once
])
def test_cutoffs(given, expected) -> None:
    assert M.cutoffs(given) == expected


@pytest.mark.parametrize("bad", [0, "0", "-3", "ten", "10;20", [], True])
def test_bad_cutoffs_are_one_line_errors(bad) -> None:
    with pytest.raises(ValueError, match="cut-off") as info:
        M.cutoffs(bad)
    assert "\n" not in str(info.value)
