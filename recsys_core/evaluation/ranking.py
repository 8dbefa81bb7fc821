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
        # One more than needed: where the K-th and the next score differ, the best K are
        # one set whatever order topk breaks ties in, and no pass over the row is needed.
        best = torch.topk(torch.from_numpy(np.ascontiguousarray(values)), width + 1, dim=1)
        chosen = best.indices[:, :width].numpy()
        scores = best.values.numpy()
        kth = scores[:, width - 1]
        tied = np.flatnonzero((kth == scores[:, width]) & np.isfinite(kth))
        _break_ties_low(values, chosen, tied, kth[tied])
    else:
        chosen = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    chosen_scores = np.take_along_axis(values, chosen, axis=1)
    order = np.lexsort((chosen, -chosen_scores), axis=1)
    ranked = np.take_along_axis(chosen, order, axis=1)
    ranked_scores = np.take_along_axis(chosen_scores, order, axis=1)
    out[:, :width] = np.where(np.isneginf(ranked_scores), -1, ranked)
    return out


def _break_ties_low(values: np.ndarray, chosen: np.ndarray, rows: np.ndarray,
                    kth: np.ndarray) -> None:
    """In ``rows``, ties at the K-th place (score ``kth``): keep the lowest-index tied items."""
    width = chosen.shape[1]
    for r, score in zip(rows, kth, strict=True):
        above = np.flatnonzero(values[r] > score)
        tied = np.flatnonzero(values[r] == score)[: width - above.size]
        chosen[r] = np.concatenate([above, tied])
