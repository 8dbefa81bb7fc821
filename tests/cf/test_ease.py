from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.cf.ease import EASE, EASEConfig, auto_form, ease_weights
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.scoring import Scorer
from tests.scorer_contract import ScorerContract, checkerboard


class TestEASEContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return EASE(EASEConfig(l2=10.0))


X = np.array([[1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=np.float32)
# By hand: G + I = [[3,2,1],[2,4,2],[1,2,3]], det 16, P = adj / 16 =
# [[.5,-.25,0],[-.25,.5,-.25],[0,-.25,.5]], B_ij = -P_ij / P_jj, diagonal 0.
B_BY_HAND = np.array([[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]])


@pytest.mark.parametrize("form", ["auto", "items", "users"])
def test_weights_match_hand_computed_3x3(form: str) -> None:
    np.testing.assert_allclose(ease_weights(sp.csr_matrix(X), 1.0, form),
                               B_BY_HAND, atol=1e-6)


@pytest.mark.parametrize(("n_users", "n_items"), [(12, 40), (40, 12)])
def test_both_forms_match_a_float64_inverse(n_users: int, n_items: int) -> None:
    """``auto`` solves over users for 12 x 40 and over items for 40 x 12; both exact."""
    rng = np.random.default_rng(0)
    dense = rng.integers(1, 6, (n_users, n_items)) * (rng.random((n_users, n_items)) < 0.3)
    dense[0] = 1  # every item warm
    p = np.linalg.inv(dense.T.astype(np.float64) @ dense + 3.0 * np.eye(n_items))
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    matrix = sp.csr_matrix(dense.astype(np.float32))
    assert auto_form(n_users, n_items) == ("users" if n_users < n_items else "items")
    for form in ("auto", "items", "users"):
        np.testing.assert_allclose(ease_weights(matrix, 3.0, form),
                                   expected, atol=1e-4, err_msg=form)  # float32 arithmetic


def test_scores_are_rows_times_weights() -> None:
    data = InteractionData(sp.csr_matrix(X), Vocabulary("abc"), Vocabulary("xyz"))
    values = EASE(EASEConfig(l2=1.0)).train(data).score(["a", "b", "c"]).values
    np.testing.assert_allclose(values, X @ B_BY_HAND, atol=1e-6)


def test_cold_items_are_nan_and_excluded_from_the_solve() -> None:
    matrix = sp.csr_matrix(np.c_[X, np.zeros(3, dtype=np.float32)])
    data = InteractionData(matrix, Vocabulary("abc"), Vocabulary("xyzw"))
    model = EASE(EASEConfig(l2=1.0)).train(data)
    assert model.weights.shape == (3, 3)
    values = model.score(["a", "b", "c"]).values
    assert np.isnan(values[:, 3]).all()
    np.testing.assert_allclose(values[:, :3], X @ B_BY_HAND, atol=1e-6)


def test_too_many_items_raises_a_clear_error() -> None:
    board = checkerboard()
    with pytest.raises(ValueError, match="max_items"):
        EASE(EASEConfig(max_items=10)).train(board.data)
