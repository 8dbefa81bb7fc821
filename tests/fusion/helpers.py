"""Shared helpers for fusion, model and registry tests: fixed-score scorers, small data."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions


class FixedConfig(ScorerConfig):
    tag: str = "fixed"


class FixedScorer(Scorer[FixedConfig]):
    """Returns rows of a fixed users x items matrix; records the batch sizes asked for."""

    name = "fixed"

    def __init__(self, values: np.ndarray, tag: str = "fixed") -> None:
        super().__init__(FixedConfig(tag=tag))
        self.values = np.asarray(values, dtype=np.float32)
        self.calls: list[int] = []

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        assert self.values.shape == (data.n_users, data.n_items)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        self.calls.append(len(user_index))
        return self.values[user_index].copy()


class ExplodingScorer(FixedScorer):
    """Trains fine, raises if ever asked to score."""

    name = "exploding"

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        raise AssertionError("a zero-weight source must never be scored")


def matrix_of(n_users: int, n_items: int, pairs: list[tuple[int, int]]) -> sp.csr_matrix:
    """A weight-1 CSR from (user, item) index pairs."""
    rows = np.array([p[0] for p in pairs], dtype=np.int64)
    cols = np.array([p[1] for p in pairs], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)),
                           shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def make_data(n_users: int, n_items: int, pairs: list[tuple[int, int]],
              titles: bool = False) -> InteractionData:
    """InteractionData over u0.., i0.. vocabularies with weight-1 (user, item) index pairs."""
    users = Vocabulary(f"u{u}" for u in range(n_users))
    items = Vocabulary(f"i{i}" for i in range(n_items))
    names = (np.array([f"title {i}" for i in range(n_items)], dtype=object) if titles
             else None)
    return InteractionData(matrix_of(n_users, n_items, pairs), users, items,
                           item_titles=names)


def random_pairs(n_users: int, n_items: int, per_user: int, seed: int,
                 skip_items: tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """``per_user`` distinct random items for every user, never an item in ``skip_items``."""
    rng = np.random.default_rng(seed)
    allowed = np.setdiff1d(np.arange(n_items), skip_items)
    return [(u, int(i)) for u in range(n_users)
            for i in rng.choice(allowed, size=per_user, replace=False)]
