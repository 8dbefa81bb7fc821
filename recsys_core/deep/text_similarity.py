"""TextSimilarity: cosine between a user's text profile and every item's text embedding."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_core.data.interactions import InteractionData
from recsys_core.deep.sequences import interaction_ages
from recsys_core.deep.torch_utils import require_embeddings, unit_rows
from recsys_core.scoring import History, Scorer, ScorerConfig, TrainOptions

log = logging.getLogger(__name__)


class TextSimilarityConfig(ScorerConfig):
    """How a user's profile is built from the items they touched.

    Args:
        half_life: recency half-life in interactions: the user's k-th newest item weighs
            ``0.5 ** (k / half_life)``; ``None`` weighs all history alike.
        use_weights: multiply by the interaction weights (ratings, counts).
    """

    half_life: float | None = Field(None, gt=0)
    use_weights: bool = True


class TextSimilarity(Scorer[TextSimilarityConfig]):
    """Content-based source: profile = weighted mean of the user's unit item embeddings.

    Every item with an embedding is scored, cold items included; that is what makes new
    items recommendable. Users with no training interactions have no profile and score NaN.

    Args:
        config: profile settings (defaults when ``None``).

    Attributes:
        profiles: float32 (n_users, d) unit profiles (zero rows for cold users).
        item_vectors: float32 (n_items, d) unit item embeddings.
    """

    name = "text"
    profiles: np.ndarray
    item_vectors: np.ndarray

    def __init__(self, config: TextSimilarityConfig | None = None) -> None:
        super().__init__(config or TextSimilarityConfig())

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        self.item_vectors = require_embeddings(data.item_embeddings, self.name)
        matrix = sp.csr_matrix(data.matrix, dtype=np.float32)
        weights = (matrix.data.astype(np.float32) if self.config.use_weights
                   else np.ones(matrix.nnz, dtype=np.float32))
        if self.config.half_life is not None:
            ages = interaction_ages(data).astype(np.float32)
            weights = weights * np.power(0.5, ages / self.config.half_life, dtype=np.float32)
        weighted = sp.csr_matrix((weights, matrix.indices, matrix.indptr), shape=matrix.shape)
        # Cosine ignores the mean's denominator, so a weighted sum normalised is enough.
        self.profiles = unit_rows(weighted @ self.item_vectors)
        log.info("TextSimilarity: %d profiles over %d-d embeddings", data.n_users,
                 self.item_vectors.shape[1])

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return self._cosine(self.profiles[user_index])

    def _fold_in(self, history: History) -> np.ndarray:
        matrix = history.matrix
        weights = (matrix.data.astype(np.float32) if self.config.use_weights
                   else np.ones(matrix.nnz, dtype=np.float32))
        if self.config.half_life is not None:
            ages = history.ages().astype(np.float32)
            weights = weights * np.power(0.5, ages / self.config.half_life, dtype=np.float32)
        weighted = sp.csr_matrix((weights, matrix.indices, matrix.indptr), shape=matrix.shape)
        return self._cosine(unit_rows(weighted @ self.item_vectors))

    def _cosine(self, profiles: np.ndarray) -> np.ndarray:
        scores = profiles @ self.item_vectors.T
        scores[~np.any(profiles != 0, axis=1)] = np.nan
        return scores
