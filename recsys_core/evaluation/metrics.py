"""Ranking metrics at K, vectorised over users.

Inputs are a top-K matrix of item indices (one row per user, best first, ``-1`` for an empty
slot) and a users x items relevance matrix (CSR; any stored non-zero is relevant, binary).

Definitions, per user with ``rel`` relevant items and ``hits[j]`` = the j-th item is relevant:

- precision@K = #hits / K (empty slots count as misses).
- recall@K = #hits / |rel|.
- F1@K = 2 P R / (P + R) *per user*, then averaged like every other metric (not the F1 of
  the averaged P and R), so that it has per-user values for segments and paired tests.
- NDCG@K: binary gains, discount 1 / log2(rank + 1); the ideal DCG puts min(|rel|, K) hits
  first.
- MAP@K: average precision = sum_j P@j * hits[j] / min(|rel|, K), averaged over users.
- hit@K: 1 if any hit. MRR@K: 1 / rank of the first hit, 0 without one.
- coverage@K (not per user): distinct items recommended to the users / catalogue size.

Users with no relevant item score 0 on every per-user metric; callers normally leave them out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

PER_USER = ("ndcg", "precision", "recall", "f1", "map", "hit", "mrr")
"""Short names of the per-user metrics, in report order (coverage comes last)."""
ALL = (*PER_USER, "coverage")


def metric_keys(k: int) -> tuple[str, ...]:
    """Return the report keys at ``k``: ``ndcg@k``, ..., ``coverage@k`` in report order.

    Args:
        k: the cut-off.
    """
    return tuple(f"{name}@{k}" for name in ALL)


def cutoffs(k: int | str | Sequence[int | str]) -> tuple[int, ...]:
    """The distinct cut-offs in ``k``, in the order given (the first is the main one).

    Args:
        k: one cut-off (``10``), several (``[10, 20]``), or text as typed on a command line
            (``"10,20"``; a list of such: ``["10", "20,50"]``).

    Raises:
        ValueError: a value that is not a positive integer, or no value at all (one line).
    """
    out: list[int] = []
    for value in [k] if isinstance(k, int | str) else k:
        text = "" if isinstance(value, bool) else str(value).strip()
        for part in re.split(r"[,\s]+", text):
            if not part.isdigit() or int(part) < 1:
                raise ValueError(f"bad cut-off {part or value!r}: use integers >= 1, e.g. "
                                 "--k 10 --k 20 or --k 10,20")
            if int(part) not in out:
                out.append(int(part))
    if not out:
        raise ValueError("no cut-off given: use e.g. --k 10 or --k 10,20")
    return tuple(out)


def relevance_matrix(relevant: Sequence[Iterable[int]], n_items: int) -> sp.csr_matrix:
    """Build a boolean users x items CSR from per-user collections of item indices.

    Args:
        relevant: for each user, the relevant item indices.
        n_items: number of columns.
    """
    lists = [np.unique(np.asarray(list(r), dtype=np.int64)) for r in relevant]
    indptr = np.r_[0, np.cumsum([len(r) for r in lists])].astype(np.int64)
    indices = np.concatenate(lists) if lists else np.empty(0, dtype=np.int64)
    data = np.ones(len(indices), dtype=bool)
    return sp.csr_matrix((data, indices, indptr), shape=(len(lists), n_items))


def hit_matrix(topk: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Whether each recommended item is relevant to its user.

    Args:
        topk: int (n_users, K) item indices, best first, distinct per row; ``-1`` = empty.
        relevant: (n_users, n_items) relevance; stored non-zeros are relevant.

    Returns:
        bool (n_users, K).
    """
    topk = np.asarray(topk, dtype=np.int64)
    rel = _binary(relevant)
    if rel.shape[0] != topk.shape[0]:
        raise ValueError(f"topk has {topk.shape[0]} rows, relevance {rel.shape[0]}")
    n_items = rel.shape[1]
    rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    rel_keys = rows * n_items + rel.indices
    keys = np.arange(topk.shape[0], dtype=np.int64)[:, None] * n_items + topk
    return np.isin(keys, rel_keys) & (topk >= 0)


def per_user(topk: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict[str, np.ndarray]:
    """Every per-user metric at ``k``.

    Args:
        topk: int (n_users, <=k) item indices, best first; ``-1`` = empty slot. Narrower
            rows (fewer items than ``k`` in the catalogue) are padded with empty slots.
        relevant: (n_users, n_items) relevance.
        k: the cut-off.

    Returns:
        ``PER_USER`` short name -> float64 (n_users,).
    """
    topk = np.asarray(topk, dtype=np.int64)
    if topk.ndim != 2 or topk.shape[1] > k:
        raise ValueError(f"topk must be (n_users, <= {k}), got {topk.shape}")
    if topk.shape[1] < k:
        pad = np.full((topk.shape[0], k - topk.shape[1]), -1, dtype=np.int64)
        topk = np.hstack([topk, pad])
    hits = hit_matrix(topk, relevant)
    n_relevant = np.diff(_binary(relevant).indptr)
    return from_hits(hits, n_relevant)


def from_hits(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-user metric from a hit matrix.

    Args:
        hits: bool (n_users, K), K = the cut-off.
        n_relevant: int (n_users,) number of relevant items per user.

    Returns:
        ``PER_USER`` short name -> float64 (n_users,).
    """
    hits = np.asarray(hits, dtype=bool)
    n_users, k = hits.shape
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    n_hits = hits.sum(axis=1, dtype=np.float64)
    has_rel = n_relevant > 0
    ideal_n = np.minimum(n_relevant, k)

    precision = n_hits / k if k else np.zeros(n_users)
    recall = _safe_div(n_hits, n_relevant)
    f1 = _safe_div(2 * precision * recall, precision + recall)

    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = hits @ discounts
    ideal = np.r_[0.0, np.cumsum(discounts)][ideal_n]
    ndcg = _safe_div(dcg, ideal)

    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    ap = _safe_div((precision_at * hits).sum(axis=1), ideal_n)

    hit = hits.any(axis=1)
    first = hits.argmax(axis=1)
    mrr = np.where(hit, 1.0 / (first + 1.0), 0.0)
    out = {"ndcg": ndcg, "precision": precision, "recall": recall, "f1": f1, "map": ap,
           "hit": hit.astype(np.float64), "mrr": mrr}
    return {name: np.where(has_rel, value, 0.0) for name, value in out.items()}


def coverage(topk: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: distinct recommended items / ``n_items`` (``-1`` slots ignored).

    Args:
        topk: int (n_users, K) item indices.
        n_items: catalogue size.
    """
    if n_items <= 0:
        return 0.0
    items = np.asarray(topk, dtype=np.int64).ravel()
    return float(np.unique(items[items >= 0]).size / n_items)


def summarize(per_user_values: Mapping[str, np.ndarray], coverage_value: float, k: int
              ) -> dict[str, float]:
    """Report dict (``metric_keys(k)``) from per-user values: means, plus coverage.

    Every value, coverage included, is NaN over zero users.

    Args:
        per_user_values: ``PER_USER`` short name -> per-user values.
        coverage_value: catalogue coverage of the same users' lists.
        k: the cut-off.
    """
    out = {}
    empty = False
    for name in PER_USER:
        values = np.asarray(per_user_values[name], dtype=np.float64)
        empty = values.size == 0
        out[f"{name}@{k}"] = float("nan") if empty else float(values.mean())
    out[f"coverage@{k}"] = float("nan") if empty else float(coverage_value)
    return out


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    rel = sp.csr_matrix(matrix, copy=True)
    rel.sum_duplicates()
    rel.eliminate_zeros()
    rel.sort_indices()
    return rel


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out
