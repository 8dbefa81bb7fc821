"""EASE (Steck 2019): a closed-form item-item linear autoencoder, a strong CF baseline."""

from __future__ import annotations

import logging
import time
from typing import Literal

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from pydantic import Field

from recsys_core.cf.warm import mask_cold, warm_items, warm_users
from recsys_core.data.interactions import InteractionData
from recsys_core.scoring import History, Scorer, ScorerConfig, TrainOptions

log = logging.getLogger(__name__)


class EASEConfig(ScorerConfig):
    """EASE hyperparameters and its size guard.

    Args:
        l2: the ridge penalty lambda added to the Gram matrix diagonal.
        binarize: fit on 0/1 instead of the interaction weights.
        max_items: refuse to fit above this many warm items. EASE holds dense
            (n_items, n_items) float32 matrices: memory is O(n_items^2) (20,000 items is
            1.6 GB per matrix, two or three alive at once) and time O(n_items^3), or
            O(n_users^3) plus O(interactions x n_items) when users are fewer
            (``ease_weights``).
    """

    l2: float = Field(500.0, gt=0)
    binarize: bool = False
    max_items: int = Field(20_000, gt=0)


def gram(matrix: sp.csr_matrix, chunk_bytes: int = 256 * 2**20) -> np.ndarray:
    """Dense float32 ``X^T X``, built from blocks of users so memory stays bounded.

    A sparse-times-dense product per block is much faster than a sparse-sparse product
    whose result is nearly dense anyway.

    Args:
        matrix: users x items ``X``.
        chunk_bytes: the most memory one dense block of ``X`` may take.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    n_users, n_items = matrix.shape
    step = max(1, chunk_bytes // (4 * max(n_items, 1)))
    out = np.zeros((n_items, n_items), dtype=np.float32)
    for start in range(0, n_users, step):
        block = matrix[start:start + step]
        out += block.T @ block.toarray()
    return out


def ease_weights(matrix: sp.csr_matrix, l2: float,
                 form: Literal["auto", "items", "users"] = "auto") -> np.ndarray:
    """EASE's item-item weights: ``B = I - P / diag(P)``, ``P = (X^T X + l2 I)^-1``, diag 0.

    Args:
        matrix: users x items training matrix ``X``.
        l2: ridge penalty lambda.
        form: two exact ways to the same weights. ``items``: invert the items x items
            ``X^T X + l2 I``; ``users``: invert the users x users ``X X^T + l2 I``
            (``_dual_weights``), far cheaper when users are few (``bench/ease.py``);
            ``auto``: ``auto_form``'s choice.
    """
    if form == "auto":
        form = auto_form(*matrix.shape)
    if form == "users":
        return _dual_weights(sp.csr_matrix(matrix, dtype=np.float32), l2)
    weights = gram(matrix)
    weights[np.diag_indices_from(weights)] += l2
    inverse = _lower_inverse(weights)
    diagonal = np.diag(inverse).copy()
    inverse += inverse.T  # full P off the diagonal; the diagonal is zeroed next anyway
    inverse[np.diag_indices_from(inverse)] = 0.0
    inverse /= -diagonal
    return np.ascontiguousarray(inverse)


def auto_form(n_users: int, n_items: int) -> Literal["items", "users"]:
    """``ease_weights``'s default form for ``n_users`` x ``n_items``.

    ``users`` when there are at most half as many users as items (about where the two cost
    the same), else ``items``.
    """
    return "users" if 2 * n_users <= n_items else "items"


def _dual_weights(matrix: sp.csr_matrix, l2: float) -> np.ndarray:
    """``ease_weights`` through the users x users system (Woodbury's identity).

    ``P = (I - M) / l2`` with ``M = X^T (X X^T + l2 I)^-1 X``, so ``B_ij = M_ij / (1 - M_jj)``
    off the diagonal: one users x users inverse and two sparse-times-dense products, whose
    cost follows the interactions, instead of an items x items inverse.
    """
    kernel = (matrix @ matrix.T).toarray()
    kernel[np.diag_indices_from(kernel)] += l2
    inverse = _lower_inverse(kernel)
    inverse += inverse.T  # the full symmetric inverse: the diagonal was counted twice
    inverse[np.diag_indices_from(inverse)] /= 2
    left = np.asarray(matrix.T @ inverse)  # X^T K^-1: items x users
    weights = np.asarray(matrix.T @ left.T)  # X^T K^-1 X: items x items
    del left
    diagonal = np.diag(weights).copy()
    weights /= 1.0 - diagonal
    weights[np.diag_indices_from(weights)] = 0.0
    return np.ascontiguousarray(weights, dtype=np.float32)


def _lower_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite float32 ``matrix``, lower triangle only.

    Cholesky inverse in place (``matrix.T`` is Fortran-ordered and equal to it), about half
    the cost of a general inverse; float32 halves memory and time, and the ridge keeps the
    matrix well conditioned. ``clean=True`` zeroes the upper triangle, which ``spotri``
    leaves alone while it fills the lower one. ``matrix`` is overwritten.
    """
    factor, info = la.lapack.spotrf(matrix.T, lower=True, overwrite_a=True, clean=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix is not positive definite (info={info})")
    inverse, info = la.lapack.spotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE inverse failed (info={info})")
    return inverse


class EASE(Scorer[EASEConfig]):
    """EASE over the warm items; ``score(u) = X[u] @ B``, cold items and users NaN.

    The closed form is solved over items with training interactions only (cold items would
    get all-zero weights anyway), which also keeps the dense matrices as small as possible.

    Args:
        config: hyperparameters (defaults when ``None``).

    Attributes:
        weights: float32 (n_warm, n_warm) item-item weights ``B``.
        warm_items: item mask; ``weights`` rows/columns follow its True positions.
    """

    name = "ease"
    weights: np.ndarray
    user_items: sp.csr_matrix
    warm_items: np.ndarray
    warm_users: np.ndarray

    def __init__(self, config: EASEConfig | None = None) -> None:
        super().__init__(config or EASEConfig())

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        c = self.config
        self.warm_items = warm_items(data.matrix)
        n_warm = int(self.warm_items.sum())
        if n_warm > c.max_items:
            raise ValueError(
                f"EASE needs dense {n_warm} x {n_warm} matrices (O(n_items^2) memory, "
                f"~{n_warm**2 * 4 / 1e9:.1f} GB each); that exceeds max_items={c.max_items}. "
                "Raise EASEConfig.max_items if the memory is there, or use ALS/item-kNN."
            )
        matrix = sp.csr_matrix(data.matrix[:, self.warm_items], dtype=np.float32)
        if c.binarize:
            matrix.data = np.ones_like(matrix.data)
        start = time.perf_counter()
        self.weights = ease_weights(matrix, c.l2)
        self.user_items = matrix
        self.warm_users = warm_users(data.matrix)
        log.info("EASE: %d warm items, l2=%g in %.2fs", n_warm, c.l2,
                 time.perf_counter() - start)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        scores = np.full((len(user_index), len(self.warm_items)), np.nan, dtype=np.float32)
        scores[:, self.warm_items] = self.user_items[user_index] @ self.weights
        return mask_cold(scores, self.warm_users[user_index])

    def _fold_in(self, history: History) -> np.ndarray:
        rows = sp.csr_matrix(history.matrix[:, self.warm_items], dtype=np.float32)
        if self.config.binarize:
            rows.data = np.ones_like(rows.data)
        rows.eliminate_zeros()
        scores = np.full((len(history), len(self.warm_items)), np.nan, dtype=np.float32)
        scores[:, self.warm_items] = rows @ self.weights
        return mask_cold(scores, np.diff(rows.indptr) > 0)
