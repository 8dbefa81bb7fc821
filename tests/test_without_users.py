"""Dropping users from trained state by shape (``Scorer.without_users``), and when it refuses."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys_core.data.interactions import InteractionData
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions
from tests.scorer_contract import checkerboard


class _Config(ScorerConfig):
    pass


class _Holder(Scorer[_Config]):
    """A scorer keeping per-user state in every shape the search has to find."""

    name = "holder"

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        n = data.n_users
        self.factors = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
        self.history = sp.csr_matrix(data.matrix).tocoo()
        self.nested = {"sequences": [np.array([u]) for u in range(n)], "item_bias":
                       np.ones(data.n_items)}
        self.net = torch.nn.Linear(3, 2)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return np.repeat(self.factors[user_index, :1], len(self.vocabularies()[1]), axis=1)


def test_every_users_long_axis_loses_the_rows() -> None:
    board = checkerboard(users_per_group=6, items_per_group=4)  # 12 users, 8 items
    scorer = _Holder(_Config()).train(board.data)
    kept = scorer.without_users(["u1", "u7"])
    assert kept is not None
    rows = [u for u in range(12) if u not in (1, 7)]
    np.testing.assert_array_equal(kept.factors, scorer.factors[rows])
    assert kept.history.format == "coo" and kept.history.shape == (10, 8)
    assert [int(s[0]) for s in kept.nested["sequences"]] == rows
    assert kept.nested["item_bias"] is scorer.nested["item_bias"]  # items: left alone
    assert kept.net is scorer.net
    assert len(scorer.factors) == 12  # the original is untouched


def test_state_it_cannot_tell_apart_asks_for_a_retraining() -> None:
    square = checkerboard(users_per_group=5, items_per_group=5)  # as many items as users
    assert _Holder(_Config()).train(square.data).without_users(["u1"]) is None
    board = checkerboard(users_per_group=6, items_per_group=4)
    embedded = _Holder(_Config()).train(board.data)
    embedded.net = torch.nn.Embedding(12, 4)  # a user embedding table
    assert embedded.without_users(["u1"]) is None
    transposed = _Holder(_Config()).train(board.data)
    transposed.factors = transposed.factors.T.copy()  # users on another axis
    assert transposed.without_users(["u1"]) is None
