"""ALS fold-in: a user vector for an item history, solved against fixed item factors.

The same least-squares step implicit's ALS runs for each user during training (its
``user_linear_equation``): with confidence ``c = alpha * w`` for each item the user touched,

    x_u = (Y^T Y + reg * I + sum_i (c_i - 1) y_i y_i^T)^-1  sum_i c_i y_i

so a user unknown at training time (or a known user plus recent items) gets factors on the
scale of the trained ones without refitting anything.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def als_gram(item_factors: np.ndarray, regularization: float) -> np.ndarray:
    """``Y^T Y + reg * I`` in float64, the part of every fold-in system shared by all users.

    Args:
        item_factors: float (n_items, f) item factors ``Y``.
        regularization: ALS's L2 penalty.
    """
    factors = np.asarray(item_factors, dtype=np.float64)
    return factors.T @ factors + regularization * np.eye(factors.shape[1])


def als_user_factors(item_factors: np.ndarray, gram: np.ndarray, matrix: sp.csr_matrix,
                     alpha: float) -> np.ndarray:
    """Solve ALS's user step for each row of ``matrix``; zero vectors for empty rows.

    Args:
        item_factors: float (n_items, f) item factors ``Y``.
        gram: ``als_gram(item_factors, regularization)``.
        matrix: CSR (n, n_items) interaction weights ``w`` (the training weights' scale).
        alpha: ALS's confidence scale.
    """
    matrix = sp.csr_matrix(matrix)
    n_factors = item_factors.shape[1]
    out = np.zeros((matrix.shape[0], n_factors), dtype=np.float32)
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if start == end:
            continue
        y = np.asarray(item_factors[matrix.indices[start:end]], dtype=np.float64)
        confidence = alpha * np.asarray(matrix.data[start:end], dtype=np.float64)
        system = gram + (y.T * (confidence - 1.0)) @ y
        target = y.T @ confidence
        try:
            out[row] = np.linalg.solve(system, target)
        except np.linalg.LinAlgError:  # weights below 1/alpha can make it singular
            out[row] = np.linalg.lstsq(system, target, rcond=None)[0]
    return out
