"""Order within each user's history: ages for recency weights, windows for sequence models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData


def interaction_ages(data: InteractionData) -> np.ndarray:
    """Count, for every stored entry of ``data.matrix``, the user's newer interactions.

    The result follows the matrix's CSR order; the user's latest interaction has age 0.
    Order is by ``data.times`` when present (same sparsity pattern as the matrix, as
    ``InteractionData`` documents), else by position in the matrix row.

    Args:
        data: the training data.
    """
    matrix = sp.csr_matrix(data.matrix)
    counts = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    if data.times is not None and data.times.nnz == matrix.nnz:
        key = np.asarray(data.times.data, dtype=np.float64)
    else:
        key = np.arange(matrix.nnz, dtype=np.float64)
    order = np.lexsort((np.arange(matrix.nnz), key, rows))
    rank = np.empty(matrix.nnz, dtype=np.int64)
    rank[order] = np.arange(matrix.nnz) - matrix.indptr[rows[order]]
    return counts[rows] - 1 - rank


def windows(sequence: np.ndarray, length: int) -> list[np.ndarray]:
    """Cut a sequence into windows of ``length + 1`` items overlapping by one item.

    Each transition (item t -> item t+1) then appears in exactly one window.

    Args:
        sequence: item indices, oldest first.
        length: input steps per window (the window holds one more item, the last target).
    """
    return [sequence[start:start + length + 1]
            for start in range(0, max(len(sequence) - 1, 0), length)]


def pad(sequences: list[np.ndarray], length: int, value: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad (after truncating each to its last ``length`` items) into a matrix.

    Args:
        sequences: item-index arrays.
        length: columns of the result.
        value: the padding index.

    Returns:
        (len(sequences), length) int64 indices and each row's true length.
    """
    out = np.full((len(sequences), length), value, dtype=np.int64)
    lengths = np.zeros(len(sequences), dtype=np.int64)
    for row, seq in enumerate(sequences):
        seq = seq[-length:]
        out[row, :len(seq)] = seq
        lengths[row] = len(seq)
    return out, lengths
