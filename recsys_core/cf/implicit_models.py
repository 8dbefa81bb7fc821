"""ALS, BPR and item-kNN from ``implicit``, wrapped as scorers over numpy copies.

Each scorer builds its implicit model through ``backend.build_model``, fits it on the users x
items CSR and keeps only numpy factors (ALS, BPR) or the scipy similarity matrix (item-kNN),
so trained scorers pickle small and load without a GPU or ``implicit``. Users and items with
no training interactions score NaN: collaborative filtering has nothing to say about them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_core.cf import backend
from recsys_core.cf.backend import ImplicitKind
from recsys_core.cf.fold_in import als_gram, als_user_factors
from recsys_core.cf.warm import mask_cold, warm_items, warm_users
from recsys_core.data.interactions import InteractionData
from recsys_core.scoring import History, Scorer, ScorerConfig, TrainOptions

log = logging.getLogger(__name__)


class FactorConfig(ScorerConfig):
    """A matrix factorisation's config; every field is the implicit model's keyword of that name.

    Args:
        factors: latent dimensions.
    """

    factors: int = Field(64, gt=0)


class ALSConfig(FactorConfig):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008; CG solver of Takács et al.).

    Args:
        factors: latent dimensions.
        regularization: L2 penalty on the factors.
        alpha: confidence scale; implicit fits on ``alpha * weight`` (confidence 1 + that).
        iterations: ALS sweeps.
    """

    regularization: float = Field(0.01, ge=0)
    alpha: float = Field(1.0, gt=0)
    iterations: int = Field(15, gt=0)


class BPRConfig(FactorConfig):
    """Bayesian personalised ranking (Rendle et al. 2009), trained by SGD.

    Args:
        factors: latent dimensions (implicit adds one for the item bias).
        learning_rate: SGD step size.
        regularization: L2 penalty.
        iterations: epochs over the training pairs.
        verify_negative_samples: resample negatives the user actually touched.
    """

    learning_rate: float = Field(0.01, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, gt=0)
    verify_negative_samples: bool = True


class ItemKNNConfig(ScorerConfig):
    """Item-item nearest neighbours.

    Args:
        similarity: ``cosine`` or ``bm25`` weighting before the item-item dot products.
        k: neighbours kept per item.
        k1: BM25 term-saturation constant (``bm25`` only).
        b: BM25 length normalisation (``bm25`` only).
    """

    similarity: Literal["cosine", "bm25"] = "cosine"
    k: int = Field(20, gt=0)
    k1: float = Field(1.2, gt=0)
    b: float = Field(0.75, ge=0, le=1)


C = TypeVar("C", bound=FactorConfig)


class FactorScorer(Scorer[C]):
    """A matrix-factorisation scorer: ``user_factors[u] @ item_factors.T`` over numpy arrays.

    Subclasses set ``kind``, the implicit model their config's fields are passed to.

    Attributes:
        user_factors: float32 (n_users, f).
        item_factors: float32 (n_items, f).
        warm_users: users with training interactions.
        warm_items: items with training interactions.
    """

    kind: ClassVar[ImplicitKind]
    user_factors: np.ndarray
    item_factors: np.ndarray
    warm_users: np.ndarray
    warm_items: np.ndarray

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        start = time.perf_counter()
        model = backend.fit(backend.build_model(self.kind, self.config.model_dump(), options),
                            data.matrix)
        self._store(model, data)
        log.info("%s: %d x %d, %d factors in %.2fs", self.kind.upper(), data.n_users,
                 data.n_items, self.config.factors, time.perf_counter() - start)

    def _store(self, model: Any, data: InteractionData) -> None:
        """Copy factors out of a fitted implicit model; the model itself is not kept."""
        self.user_factors = backend.to_numpy(model.user_factors)
        self.item_factors = backend.to_numpy(model.item_factors)
        self.warm_users = warm_users(data.matrix)
        self.warm_items = warm_items(data.matrix)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        scores = self.user_factors[user_index] @ self.item_factors.T
        return mask_cold(scores, self.warm_users[user_index], self.warm_items)


class ALS(FactorScorer[ALSConfig]):
    """Implicit ALS; scores are dot products of the copied factors.

    Args:
        config: hyperparameters (defaults when ``None``).
    """

    name = "als"
    kind = "als"

    def __init__(self, config: ALSConfig | None = None) -> None:
        super().__init__(config or ALSConfig())

    def fold_in_factors(self, matrix: sp.csr_matrix, item_factors: np.ndarray | None = None
                        ) -> np.ndarray:
        """User factors for rows of interaction weights, by ALS's own least-squares step.

        Args:
            matrix: CSR (n, n_items) weights on the training weights' scale.
            item_factors: factors the history items are read from (default: this ALS's);
                the shared Gram part always comes from this ALS's factors.
        """
        cached = getattr(self, "_gram", None)  # (factors it was built from, Gram)
        if cached is None or cached[0] is not self.item_factors:
            cached = self._gram = (self.item_factors,
                                   als_gram(self.item_factors, self.config.regularization))
        gram = cached[1]
        factors = self.item_factors if item_factors is None else item_factors
        return als_user_factors(factors, gram, matrix, self.config.alpha)

    def _fold_in(self, history: History) -> np.ndarray:
        scores = self.fold_in_factors(history.matrix) @ self.item_factors.T
        return mask_cold(scores, _touches(history.matrix, self.warm_items), self.warm_items)


class BPR(FactorScorer[BPRConfig]):
    """Implicit BPR; the item bias rides in the last factor column (user side holds 1).

    Args:
        config: hyperparameters (defaults when ``None``).
    """

    name = "bpr"
    kind = "bpr"

    def __init__(self, config: BPRConfig | None = None) -> None:
        super().__init__(config or BPRConfig())


class ItemKNN(Scorer[ItemKNNConfig]):
    """Item-kNN: ``score(u) = train_row(u) @ similarity`` over a sparse item-item matrix.

    Args:
        config: hyperparameters (defaults when ``None``).

    Attributes:
        similarity: float32 CSR (n_items, n_items); row i holds item i's top-k neighbours.
        user_items: the training matrix the user rows are read from.
    """

    name = "itemknn"
    similarity: sp.csr_matrix
    user_items: sp.csr_matrix
    warm_items: np.ndarray

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        super().__init__(config or ItemKNNConfig())

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        c = self.config
        params: dict[str, float] = {"K": c.k}
        if c.similarity == "bm25":
            params |= {"K1": c.k1, "B": c.b}
        start = time.perf_counter()
        model = backend.fit(backend.build_model(c.similarity, params, options), data.matrix)
        self.similarity = sp.csr_matrix(model.similarity, dtype=np.float32)
        self.user_items = sp.csr_matrix(data.matrix, dtype=np.float32)
        self.warm_items = warm_items(data.matrix)
        log.info("ItemKNN(%s, k=%d): %d items, %d similarities in %.2fs", c.similarity, c.k,
                 data.n_items, self.similarity.nnz, time.perf_counter() - start)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        rows = self.user_items[user_index]
        scores = np.asarray((rows @ self.similarity).toarray(), dtype=np.float32)
        return mask_cold(scores, np.diff(rows.indptr) > 0, self.warm_items)

    def _fold_in(self, history: History) -> np.ndarray:
        rows = sp.csr_matrix(history.matrix, dtype=np.float32)
        scores = np.asarray((rows @ self.similarity).toarray(), dtype=np.float32)
        # a history may hold only cold items (training rows never do): CF cannot score it
        return mask_cold(scores, _touches(rows, self.warm_items), self.warm_items)


class ItemKNNBM25Config(ItemKNNConfig):
    """Item-kNN over BM25-weighted interactions (``ItemKNNConfig`` with BM25 by default)."""

    similarity: Literal["cosine", "bm25"] = "bm25"


class ItemKNNBM25(ItemKNN, Scorer[ItemKNNBM25Config]):
    """Item-kNN with BM25 weighting as a source of its own, fused beside the cosine one.

    Args:
        config: hyperparameters (defaults when ``None``).
    """

    name = "itemknn_bm25"

    def __init__(self, config: ItemKNNBM25Config | None = None) -> None:
        super().__init__(config or ItemKNNBM25Config())

def _touches(rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Which rows hold a non-zero entry in one of the masked ``items`` (CF can score them)."""
    return np.asarray(rows.astype(bool).astype(np.int64) @ items.astype(np.int64)).ravel() > 0
