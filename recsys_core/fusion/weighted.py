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
        readouts: source name -> how that source reads its users (``Scorer.read``), for
            sources that offer several ways; absent: as trained.
    """

    weights: dict[str, float] = Field(default_factory=dict)
    bias: float = 0.0
    normaliser: Normaliser = "zscore"
    missing: Literal["mean", "min"] = "mean"
    readouts: dict[str, float] = Field(default_factory=dict)


def combine(source_scores: Mapping[str, np.ndarray], config: FusionConfig) -> np.ndarray:
    """Fuse raw per-source score blocks (same users x items) with ``config``.

    Args:
        source_scores: source name -> float (n_users, n_items) raw scores.
        config: weights, normaliser and missing-value rule.
    """
    normed = {name: normalise(values, config.normaliser)
              for name, values in source_scores.items() if config.weights.get(name, 0) != 0}
    return FilledBlocks(normed).combine(config)


class FilledBlocks:
    """Normalised score blocks with their missing values filled once, to be weighted often.

    A fused score is ``bias + sum_k w_k * filled_k`` wherever a weighted source can score the
    item (NaN where none can), ``filled_k`` being source k's normalised scores with its NaN
    replaced by the row's mean or minimum (``FusionConfig.missing``). The fusion tuner weighs
    the same blocks under a few hundred configs, and the filling was most of each weighted
    sum's cost, so it is done here once: a block keeps its mean-filled scores, the mask of its
    NaN and, per row, the step from the mean fill to the minimum fill.

    Args:
        normed: source name -> ``normalise``-d float (n_users, n_items) scores.
    """

    def __init__(self, normed: Mapping[str, np.ndarray]) -> None:
        shape = next(iter(normed.values())).shape if normed else (0, 0)
        # One (sources, users, items) array, so a weighted sum is one matrix-vector product
        # that reads each block once (``combine``).
        self.stack = np.empty((len(normed), *shape), dtype=np.float32)
        self.filled: dict[str, np.ndarray] = {}  # views into ``stack``
        self.nan: dict[str, np.ndarray | None] = {}  # None: the source scores every cell
        self.to_min: dict[str, np.ndarray] = {}
        for row, (name, block) in enumerate(normed.items()):
            finite = np.isfinite(block)
            count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
            mean = np.where(finite, block, 0.0).sum(axis=1, keepdims=True) / count
            low = np.where(finite, block, np.inf).min(axis=1, keepdims=True)
            low = np.where(np.isfinite(low), low, 0.0)  # a row without scores fills 0
            self.stack[row] = np.where(finite, block, mean)
            self.filled[name] = self.stack[row]
            self.nan[name] = None if finite.all() else ~finite
            self.to_min[name] = (low - mean).astype(np.float32)

    def _weights(self, config: FusionConfig) -> dict[str, np.float32]:
        absent = sorted(n for n, w in config.weights.items() if w != 0 and n not in self.filled)
        if absent:
            raise ValueError(f"fusion weights name sources without scores: {absent}")
        weights = {n: np.float32(w) for n, w in config.weights.items() if w != 0}
        if not weights:
            raise ValueError("fusion has no source with a non-zero weight")
        return weights

    def _add_min(self, total: np.ndarray, name: str, weight: np.float32,
                 config: FusionConfig) -> None:
        """Under ``missing="min"``: move source ``name``'s filled cells from its mean to its min."""
        nan = self.nan[name]
        if config.missing == "min" and nan is not None:
            total += nan * (self.to_min[name] * weight)

    def parts(self, config: FusionConfig) -> dict[str, np.ndarray]:
        """Each non-zero-weight source's term ``w_k * filled_k``.

        Their sum plus ``bias`` is the fused score wherever any of them scores.

        Raises:
            ValueError: no weight is non-zero, or one names a source without a block.
        """
        out = {}
        for name, weight in self._weights(config).items():
            out[name] = self.filled[name] * weight
            self._add_min(out[name], name, weight, config)
        return out

    def combine(self, config: FusionConfig) -> np.ndarray:
        """The fused float32 scores; NaN where no weighted source scores.

        Raises:
            ValueError: as ``parts``.
        """
        weights = self._weights(config)
        vector = np.array([weights.get(name, 0.0) for name in self.filled], dtype=np.float32)
        # One pass over the blocks (BLAS), where a sum of weighted blocks one by one makes a
        # weighted copy of each: the fusion tuner's most frequent operation.
        total = np.tensordot(vector, self.stack, axes=1)
        total += np.float32(config.bias)
        for name, weight in weights.items():
            self._add_min(total, name, weight, config)
        masks = [mask for name in weights if (mask := self.nan[name]) is not None]
        if len(masks) == len(weights):  # every weighted source has cells it cannot score
            total[np.logical_and.reduce(masks)] = np.nan
        return total


class WeightedFusion(Scorer[FusionConfig]):
    """Weighted sum of normalised source scores.

    Args:
        config: the weights, normalisation and readouts.
        sources: source name -> scorer; trained by ``train`` unless already trained. The
            fusion holds trained sources read with ``config.readouts`` (copies).
    """

    name = "fused"

    def __init__(self, config: FusionConfig, sources: Mapping[str, Scorer]) -> None:
        super().__init__(config)
        missing = (set(config.weights) | set(config.readouts)) - set(sources)
        if missing:
            raise ValueError(f"fusion config names unknown sources: {sorted(missing)}")
        self.sources = {name: self._read(name, scorer) for name, scorer in sources.items()}

    def _read(self, name: str, scorer: Scorer) -> Scorer:
        readout = self.config.readouts.get(name)
        return scorer if readout is None or not scorer.is_trained() else scorer.read(readout)

    def with_config(self, config: FusionConfig) -> WeightedFusion:
        """Return the same trained sources under other weights."""
        fused = WeightedFusion(config, self.sources)
        fused.users, fused.items = self.users, self.items
        return fused

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        for name, scorer in self.sources.items():
            if not scorer.is_trained():
                self.sources[name] = self._read(name, scorer.train(data, options))
            elif scorer.users != data.users or scorer.items != data.items:
                raise ValueError(f"source {name!r} was trained over other vocabularies")

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        blocks = {name: self.sources[name].score_indices(user_index)
                  for name, weight in self.config.weights.items() if weight != 0}
        return combine(blocks, self.config)
