"""Warm/cold masks: which users and items have training interactions."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def warm_users(matrix: sp.csr_matrix) -> np.ndarray:
    """Boolean mask of users (rows) with at least one training interaction.

    Args:
        matrix: users x items training matrix.
    """
    return np.diff(sp.csr_matrix(matrix).indptr) > 0


def warm_items(matrix: sp.csr_matrix) -> np.ndarray:
    """Boolean mask of items (columns) with at least one training interaction.

    Args:
        matrix: users x items training matrix.
    """
    counts = np.bincount(sp.csr_matrix(matrix).indices, minlength=matrix.shape[1])
    return counts > 0


def mask_cold(scores: np.ndarray, user_rows: np.ndarray | None = None,
              item_cols: np.ndarray | None = None) -> np.ndarray:
    """Set rows of cold users and columns of cold items to NaN, in place.

    Collaborative sources cannot score who or what they never saw; NaN says so, and the
    fusion falls back to the sources that can.

    Args:
        scores: float (n_users, n_items) scores.
        user_rows: warm mask over the rows of ``scores`` (``None``: all warm).
        item_cols: warm mask over the columns (``None``: all warm).
    """
    if item_cols is not None:
        scores[:, ~item_cols] = np.nan
    if user_rows is not None:
        scores[~user_rows] = np.nan
    return scores
