"""HybridRecommender: everything inference needs, in one picklable object."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.fusion.normalise import normalise
from recsys_core.fusion.weighted import WeightedFusion, weighted_parts

MODEL_FILE = "model.pkl"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Recommendation:
    """One recommended item.

    Args:
        item_id: the item.
        title: its title ("" when unknown).
        score: fused score (popularity share for a fallback).
        contributions: source name -> weighted normalised score it added.
        fallback: True when the user was unknown and popular items were served.
    """

    item_id: str
    title: str
    score: float
    contributions: dict[str, float]
    fallback: bool = False


class HybridRecommender:
    """Fused sources + what serving needs: titles, seen items, popularity fallback.

    Args:
        fusion: trained weighted fusion over trained sources.
        train: the training interactions (seen-item filter, popularity, titles).
    """

    def __init__(self, fusion: WeightedFusion, train: InteractionData) -> None:
        if not fusion.is_trained():
            raise ValueError("HybridRecommender needs a trained fusion")
        self.fusion = fusion
        self.users: Vocabulary = train.users
        self.items: Vocabulary = train.items
        self.seen: sp.csr_matrix = (train.matrix > 0).astype(np.float32).tocsr()
        self.popularity = np.asarray(self.seen.sum(axis=0)).ravel()
        self.titles = (np.asarray(train.item_titles, dtype=object)
                       if train.item_titles is not None
                       else np.full(len(train.items), "", dtype=object))

    def recommend(self, user_id: str, k: int = 10, exclude_seen: bool = True
                  ) -> list[Recommendation]:
        """Top-``k`` items for a user; popular items, flagged, for an unknown user.

        Args:
            user_id: the user.
            k: how many items.
            exclude_seen: drop items the user interacted with in training.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        row = self.users.index([user_id])[0]
        if row < 0:
            return self._popular(k)
        scores = self.fusion.score([user_id]).values[0]
        if exclude_seen:
            scores[self.seen.indices[self.seen.indptr[row]:self.seen.indptr[row + 1]]] = np.nan
        top = _top_k(scores, k)
        parts = self._contributions(user_id, top)
        return [Recommendation(str(self.items.ids[i]), str(self.titles[i]), float(scores[i]),
                               {name: float(values[j]) for name, values in parts.items()})
                for j, i in enumerate(top)]

    def _contributions(self, user_id: str, items: np.ndarray) -> dict[str, np.ndarray]:
        # The same terms the fusion sums (missing values filled by its rule), so that the
        # contributions plus the bias add up to the score.
        config = self.fusion.config
        normed = {name: normalise(self.fusion.sources[name].score([user_id]).values,
                                  config.normaliser)
                  for name, weight in config.weights.items() if weight != 0}
        return {name: part[0, items] for name, part in weighted_parts(normed, config).items()}

    def _popular(self, k: int) -> list[Recommendation]:
        total = max(self.popularity.sum(), 1.0)
        top = _top_k(self.popularity.astype(np.float32), k)
        return [Recommendation(str(self.items.ids[i]), str(self.titles[i]),
                               float(self.popularity[i] / total), {}, fallback=True)
                for i in top]

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        """Write the model (pickle) and its metadata (JSON) into folder ``path``.

        Args:
            path: target folder, created if missing.
            meta: extra JSON-serialisable metadata (configs, dataset, snapshot id).
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / MODEL_FILE, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        info = {"weights": self.fusion.config.model_dump(), "n_users": len(self.users),
                "n_items": len(self.items), **(meta or {})}
        (folder / META_FILE).write_text(json.dumps(info, indent=2, default=str))
        return folder

    @staticmethod
    def load(path: str | Path) -> HybridRecommender:
        """Read a model saved by ``save``.

        Args:
            path: the folder ``save`` wrote.
        """
        with open(Path(path) / MODEL_FILE, "rb") as fh:
            model = pickle.load(fh)
        if not isinstance(model, HybridRecommender):
            raise TypeError(f"{path} does not hold a HybridRecommender")
        return model


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the ``k`` highest finite scores, best first."""
    candidates = np.flatnonzero(np.isfinite(scores))
    if len(candidates) > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        candidates = candidates[part]
    return candidates[np.argsort(-scores[candidates], kind="stable")]
