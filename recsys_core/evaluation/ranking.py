"""Turning a batch of score rows into top-K item lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def exclude_seen(values: np.ndarray, seen: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set ``values[j, i] = -inf`` in place wherever user ``rows[j]`` has an entry in ``seen``.

    Args:
        values: float (len(rows), n_items) scores for a batch of users.
        seen: (n_users, n_items) interactions; any stored entry counts as seen.
        rows: the batch's user indices into ``seen``.
    """
    block = seen[np.asarray(rows, dtype=np.int64)]
    owner = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    values[owner, block.indices] = -np.inf


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Return the ``k`` best columns per row, best first; ``-1`` past the finite ones.

    Uses ``torch.topk`` (several times faster than ``np.argpartition`` on one thread; the
    fusion tuner calls this a few hundred times per carve), then sorts the survivors by
    score. Ties always go to the lower item index (also at the K-th place), so a row's list
    depends only on that row's scores. NaN and -inf never count as recommended.

    Args:
        values: float (n_rows, n_items) scores.
        k: list length, >= 1.

    Returns:
        int64 (n_rows, k) item indices.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.isnan(values).any():
        values = np.where(np.isnan(values), -np.inf, values)
    n_rows, n_items = values.shape
    width = min(k, n_items)
    out = np.full((n_rows, k), -1, dtype=np.int64)
    if width == 0 or n_rows == 0:
        return out
    if width < n_items:
        chosen = torch.topk(torch.from_numpy(np.ascontiguousarray(values)), width, dim=1,
                            sorted=False).indices.numpy()
        _break_ties_low(values, chosen)
    else:
        chosen = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    chosen_scores = np.take_along_axis(values, chosen, axis=1)
    order = np.lexsort((chosen, -chosen_scores), axis=1)
    ranked = np.take_along_axis(chosen, order, axis=1)
    ranked_scores = np.take_along_axis(chosen_scores, order, axis=1)
    out[:, :width] = np.where(np.isneginf(ranked_scores), -1, ranked)
    return out


def _break_ties_low(values: np.ndarray, chosen: np.ndarray) -> None:
    """Where ties straddle the K-th place, keep the lowest-index tied items (in place)."""
    width = chosen.shape[1]
    kth = np.take_along_axis(values, chosen, axis=1).min(axis=1)[:, None]
    n_above = (values > kth).sum(axis=1)
    n_tied = (values == kth).sum(axis=1)
    for r in np.flatnonzero((n_tied > width - n_above) & np.isfinite(kth[:, 0])):
        above = np.flatnonzero(values[r] > kth[r])
        tied = np.flatnonzero(values[r] == kth[r])[: width - above.size]
        chosen[r] = np.concatenate([above, tied])
