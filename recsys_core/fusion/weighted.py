"""Weighted fusion: a scorer over scorers.

score(u, i) = w0 + sum_k w_k * norm_k(s_k(u, i)), with each source normalised per user.
A source that cannot score an item (NaN, e.g. CF on a cold item) contributes ``missing``:
``mean`` adds the user's average normalised score for that source (0 after z-scoring, about
0.5 after ``rank``), ``min`` adds the user's lowest normalised score for that source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from recsys_core.data.interactions import InteractionData
from recsys_core.fusion.normalise import Normaliser, normalise
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions


class FusionConfig(ScorerConfig):
    """Fusion weights and how sources are put on one scale.

    Args:
        weights: source name -> weight w_k (sources absent or at 0 are not scored).
        bias: w0; it shifts every score equally, so it never changes a ranking.
        normaliser: per-user normalisation of each source.
        missing: what a source contributes where it cannot score an item.
    """

    weights: dict[str, float] = Field(default_factory=dict)
    bias: float = 0.0
    normaliser: Normaliser = "zscore"
    missing: Literal["mean", "min"] = "mean"


def combine(source_scores: Mapping[str, np.ndarray], config: FusionConfig) -> np.ndarray:
    """Fuse raw per-source score blocks (same users x items) with ``config``.

    Args:
        source_scores: source name -> float (n_users, n_items) raw scores.
        config: weights, normaliser and missing-value rule.
    """
    normed = {name: normalise(values, config.normaliser)
              for name, values in source_scores.items() if config.weights.get(name, 0) != 0}
    return combine_normalised(normed, config)


def combine_normalised(normed_scores: Mapping[str, np.ndarray], config: FusionConfig
                       ) -> np.ndarray:
    """Fuse already normalised score blocks; the tuner calls this to normalise only once.

    Args:
        normed_scores: source name -> ``normalise``-d (n_users, n_items) scores.
        config: weights and missing-value rule (its normaliser must match the blocks').
    """
    parts = weighted_parts(normed_scores, config)
    if not parts:
        raise ValueError("fusion has no source with a non-zero weight")
    total = sum(parts.values())
    any_finite = np.logical_or.reduce([np.isfinite(normed_scores[name]) for name in parts])
    return np.where(any_finite, total + config.bias, np.nan).astype(np.float32)


def weighted_parts(normed_scores: Mapping[str, np.ndarray], config: FusionConfig
                   ) -> dict[str, np.ndarray]:
    """Each non-zero-weight source's term ``w_k * norm_k``, NaN filled by ``config.missing``.

    The fused score is ``bias`` plus the sum of these (where any source can score the item).

    Args:
        normed_scores: source name -> ``normalise``-d (n_users, n_items) scores.
        config: weights and missing-value rule.

    Raises:
        ValueError: a non-zero weight names a source missing from ``normed_scores``.
    """
    absent = sorted(n for n, w in config.weights.items() if w != 0 and n not in normed_scores)
    if absent:
        raise ValueError(f"fusion weights name sources without scores: {absent}")
    parts = {}
    for name, weight in config.weights.items():
        if weight == 0:
            continue
        normed = normed_scores[name]
        finite = np.isfinite(normed)
        if config.missing == "min":
            fill = np.where(finite, normed, np.inf).min(axis=1, keepdims=True)
        else:
            fill = (np.where(finite, normed, 0.0).sum(axis=1, keepdims=True)
                    / np.maximum(finite.sum(axis=1, keepdims=True), 1))
        fill = np.where(np.isfinite(fill), fill, 0.0)
        parts[name] = (weight * np.where(finite, normed, fill)).astype(np.float32)
    return parts


class WeightedFusion(Scorer[FusionConfig]):
    """Weighted sum of normalised source scores.

    Args:
        config: the weights and normalisation.
        sources: source name -> scorer; trained by ``train`` unless already trained.
    """

    name = "fused"

    def __init__(self, config: FusionConfig, sources: Mapping[str, Scorer]) -> None:
        super().__init__(config)
        missing = set(config.weights) - set(sources)
        if missing:
            raise ValueError(f"fusion weights name unknown sources: {sorted(missing)}")
        self.sources = dict(sources)

    def with_config(self, config: FusionConfig) -> WeightedFusion:
        """Return the same trained sources under other weights."""
        fused = WeightedFusion(config, self.sources)
        fused.users, fused.items = self.users, self.items
        return fused

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        for name, scorer in self.sources.items():
            if not scorer.is_trained():
                scorer.train(data, options)
            elif scorer.users != data.users or scorer.items != data.items:
                raise ValueError(f"source {name!r} was trained over other vocabularies")

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        blocks = {name: self.sources[name].score_indices(user_index)
                  for name, weight in self.config.weights.items() if weight != 0}
        return combine(blocks, self.config)
