from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.evaluation.ranking import exclude_seen, top_k


def test_top_k_orders_and_skips_nan_and_neg_inf() -> None:
    values = np.array([[1, 3, 2, np.nan, -np.inf]], dtype=np.float32)
    assert top_k(values, 3).tolist() == [[1, 2, 0]]
    assert top_k(values, 5).tolist() == [[1, 2, 0, -1, -1]]
    assert top_k(values, 7).tolist() == [[1, 2, 0, -1, -1, -1, -1]]


def test_top_k_all_nan_row_is_empty() -> None:
    assert top_k(np.full((2, 4), np.nan), 2).tolist() == [[-1, -1], [-1, -1]]


def test_ties_go_to_lower_index_even_at_the_cut() -> None:
    values = np.array([[0, 0, 0, 0, 0], [1, 0, 1, 0, 1], [0, 2, 0, 2, 0]], dtype=np.float32)
    assert top_k(values, 2).tolist() == [[0, 1], [0, 2], [1, 3]]
    assert top_k(values, 3).tolist() == [[0, 1, 2], [0, 2, 4], [1, 3, 0]]


def test_top_k_matches_full_sort() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 200)).astype(np.float32)
    expected = np.argsort(-values, axis=1, kind="stable")[:, :10]
    assert np.array_equal(top_k(values, 10), expected)


def test_top_k_matches_a_stable_sort_with_many_ties() -> None:
    """Four score levels over 30 items: most rows have ties across the 5th place."""
    values = np.random.default_rng(2).integers(0, 4, size=(200, 30)).astype(np.float32)
    expected = np.argsort(-values, axis=1, kind="stable")[:, :5]
    assert np.array_equal(top_k(values, 5), expected)


def test_top_k_rejects_k_below_one() -> None:
    with pytest.raises(ValueError):
        top_k(np.zeros((1, 3)), 0)


def test_exclude_seen_only_touches_the_batch_rows() -> None:
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0]], dtype=np.float32))
    values = np.zeros((2, 3), dtype=np.float32)
    exclude_seen(values, seen, np.array([2, 1]))
    assert np.isneginf(values).tolist() == [[True, True, False], [False, True, True]]
