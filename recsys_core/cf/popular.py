"""MostPop: every user gets the same item popularity scores; the baseline every source beats."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.scoring import History, Scorer, ScorerConfig, TrainOptions

log = logging.getLogger(__name__)


class MostPopConfig(ScorerConfig):
    """MostPop has no hyperparameters; the config exists so every source has one shape."""


class MostPop(Scorer[MostPopConfig]):
    """Item popularity: the number of distinct training users of each item.

    Every user, cold ones included, gets the same row; items nobody touched score 0 (a true
    count, not a missing value).

    Args:
        config: the (empty) config.
    """

    name = "mostpop"
    popularity: np.ndarray

    def __init__(self, config: MostPopConfig | None = None) -> None:
        super().__init__(config or MostPopConfig())

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        matrix = sp.csr_matrix(data.matrix)
        matrix.eliminate_zeros()
        self.popularity = np.bincount(matrix.indices, minlength=data.n_items).astype(np.float32)
        log.info("MostPop: %d items, %d with users", data.n_items,
                 int((self.popularity > 0).sum()))

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(user_index), len(self.popularity))).copy()

    def _fold_in(self, history: History) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(history), len(self.popularity))).copy()
