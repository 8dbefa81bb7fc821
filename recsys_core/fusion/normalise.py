"""Per-user score normalisers: put every source on one scale before weighting."""

from __future__ import annotations

from typing import Literal

import numpy as np

Normaliser = Literal["zscore", "rank", "minmax"]


def normalise(values: np.ndarray, method: Normaliser) -> np.ndarray:
    """Normalise each row over its finite entries; NaN (cannot score) stays NaN.

    Args:
        values: float (n_users, n_items) scores.
        method: ``zscore`` (mean 0, sd 1), ``rank`` (percentile in [0, 1], ties broken by
            position) or ``minmax`` (to [0, 1]).
    """
    values = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(values)
    count = finite.sum(axis=1, keepdims=True)
    if method == "rank":
        masked = np.where(finite, values, -np.inf)
        ranks = masked.argsort(axis=1, kind="stable").argsort(axis=1).astype(np.float32)
        scaled = (ranks - (values.shape[1] - count)) / np.maximum(count - 1, 1)
        return np.where(finite, scaled, np.nan).astype(np.float32)
    zeroed = np.where(finite, values, 0.0)
    if method == "zscore":
        center = zeroed.sum(axis=1, keepdims=True) / np.maximum(count, 1)
        spread = np.sqrt((np.where(finite, values - center, 0.0) ** 2).sum(
            axis=1, keepdims=True) / np.maximum(count, 1))
    elif method == "minmax":
        center = np.where(finite, values, np.inf).min(axis=1, keepdims=True)
        spread = np.where(finite, values, -np.inf).max(axis=1, keepdims=True) - center
    else:
        raise ValueError(f"unknown normaliser {method!r}; use zscore, rank or minmax")
    center = np.where(np.isfinite(center), center, 0.0)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    return np.where(finite, (values - center) / spread, np.nan).astype(np.float32)
