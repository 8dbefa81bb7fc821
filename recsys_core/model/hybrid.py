"""HybridRecommender: everything inference needs, in one picklable object.

It holds the trained fusion (the sources and their weights), the ID maps, the training
interactions (seen-item filter, histories for fold-in and explanations, popularity), titles,
and for free-text queries the item embeddings plus a reference (name or path) to the text
encoder that made them; the encoder itself loads lazily, on the first text query.

Scoring a request normalises each source's scores once and keeps the weighted terms, so the
fused score and every source's contribution come from one pass over the sources.
"""

from __future__ import annotations

import copy
import json
import pickle
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep.text_similarity import TextSimilarity
from recsys_core.deep.torch_utils import unit_rows
from recsys_core.evaluation.ranking import top_k
from recsys_core.fusion.normalise import normalise
from recsys_core.fusion.weighted import FilledBlocks, WeightedFusion
from recsys_core.model.folder import META_FILE, MODEL_FILE
from recsys_core.model.recommendation import Recommendation
from recsys_core.scoring import History

if TYPE_CHECKING:
    from recsys_core.embed.encoder import TextEncoder

QUERY_SOURCE = "query"
"""The contribution name of a free-text query's score (cosine to the item's text)."""
DRIVER_CHUNK = 512
"""History items scored per fold-in call when explaining (bounds memory)."""


@dataclass(frozen=True)
class Driver:
    """A history item behind a recommendation.

    Args:
        item_id: the item the user touched.
        title: its title.
        influence: the explained source's raw score for the recommended item from this one
            history item alone (for item-based linear sources such as item-kNN and EASE,
            exactly this item's term of the score).
    """

    item_id: str
    title: str
    influence: float


@dataclass(frozen=True)
class Explanation:
    """Why an item scores what it does for a user.

    Args:
        user_id: the user.
        item_id: the item.
        title: the item's title.
        score: fused score (popularity share for a fallback).
        contributions: source name -> weighted normalised score it added.
        top_source: the source contributing most (``None`` for a fallback).
        drivers: the user's items that drove ``top_source`` most, strongest first.
        fallback: True when the user is unknown (the item is explained by popularity).
    """

    user_id: str
    item_id: str
    title: str
    score: float
    contributions: dict[str, float]
    top_source: str | None
    drivers: tuple[Driver, ...] = field(default_factory=tuple)
    fallback: bool = False


class HybridRecommender:
    """Fused sources + what serving needs: titles, seen items, fold-in, popularity fallback.

    Args:
        fusion: trained weighted fusion over trained sources.
        train: the training interactions (seen-item filter, histories, popularity, titles).
        encoder: name or path of the text encoder that embedded the items (for text queries).
        item_embeddings: float (n_items, d) item text embeddings aligned with ``train.items``;
            by default ``train.item_embeddings``, else those of a ``TextSimilarity`` source.
    """

    _active: list[str]
    _text_encoder: TextEncoder | None
    _lock: threading.Lock

    def __init__(self, fusion: WeightedFusion, train: InteractionData,
                 encoder: str | None = None, item_embeddings: np.ndarray | None = None) -> None:
        if not fusion.is_trained():
            raise ValueError("HybridRecommender needs a trained fusion")
        self.fusion = fusion
        self.users: Vocabulary = train.users
        self.items: Vocabulary = train.items
        self.history: sp.csr_matrix = sp.csr_matrix(train.matrix, dtype=np.float32)
        self.history.sort_indices()
        self.times: sp.csr_matrix | None = train.times
        self.seen: sp.csr_matrix = (self.history > 0).astype(np.float32).tocsr()
        self.popularity = np.asarray(self.seen.sum(axis=0)).ravel()
        self.titles = (np.asarray(train.item_titles, dtype=object)
                       if train.item_titles is not None
                       else np.full(len(train.items), "", dtype=object))
        self.encoder = encoder
        self.item_embeddings = _embeddings(item_embeddings, train, fusion)
        self._init_runtime()

    # ----------------------------------------------------------------------- public API

    def recommend(self, user_id: str | None = None, k: int = 10, exclude_seen: bool = True,
                  *, recent_items: Sequence[str] | None = None, query: str | None = None
                  ) -> list[Recommendation]:
        """Top-``k`` items for a user, a list of recent items, or a free-text query.

        - ``user_id`` alone: the trained scores of a known user; popular items, flagged as a
          fallback, for an unknown one.
        - ``recent_items`` (with or without ``user_id``): fold-in, i.e. every source scores
          the history (a known user's training items, then these) as a new user; unknown item
          IDs are ignored and an empty history gets the popular fallback.
        - ``query``: cosine between the query's embedding and each item's text embedding;
          it cannot be combined with the other two.

        Args:
            user_id: the user.
            k: how many items (at least 1).
            exclude_seen: drop the user's training items and the recent items.
            recent_items: item IDs the user touched lately, oldest first.
            query: free text.

        Raises:
            ValueError: ``k < 1``, a query combined with a user or items, an empty query,
                nothing to answer from, or a text query on a model without embeddings.
        """
        _check_k(k)
        if query is not None:
            if user_id is not None or recent_items is not None:
                raise ValueError("a text query cannot be combined with user_id or recent_items")
            return self._for_query(query, k)
        row = -1 if user_id is None else int(self.users.index([user_id])[0])
        if recent_items is not None:
            return self._for_history(row, recent_items, k, exclude_seen)
        if user_id is None:
            raise ValueError("give a user_id, recent_items or a query")
        if row < 0:
            return self._popular(k)
        total, parts = self._fuse(self._trained_scores(row))
        return self._ranked(total[0], parts, k, self._seen_items(row) if exclude_seen else None)

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Items to show beside ``item_id`` (fold-in of a history holding only that item).

        What the fusion recommends to someone who only touched ``item_id``; popular items,
        flagged, for an unknown item.

        Args:
            item_id: the item.
            k: how many items (at least 1).
        """
        _check_k(k)
        index = int(self.items.index([item_id])[0])
        if index < 0:
            return self._popular(k)
        history = History.of([np.array([index])], len(self.items))
        total, parts = self._fuse(self._folded_scores(history))
        return (self._ranked(total[0], parts, k, np.array([index]))
                or self._popular(k, exclude=np.array([index])))

    def explain(self, user_id: str, item_id: str, max_drivers: int = 5) -> Explanation:
        """Explain one item's score for a user: each source's part, the top one, its drivers.

        The drivers are the user's training items that pull the top source towards the item
        most (see ``Driver``).

        Args:
            user_id: the user (an unknown one gets a popularity explanation, flagged).
            item_id: the item.
            max_drivers: most history items to return.

        Raises:
            ValueError: the item is unknown.
        """
        col = int(self.items.index([item_id])[0])
        if col < 0:
            raise ValueError(f"unknown item {item_id!r}")
        title = str(self.titles[col])
        row = int(self.users.index([user_id])[0])
        if row < 0:
            share = float(self.popularity[col] / max(self.popularity.sum(), 1.0))
            return Explanation(str(user_id), str(item_id), title, share, {}, None, (), True)
        total, parts = self._fuse(self._trained_scores(row))
        contributions = {name: float(part[0, col]) for name, part in parts.items()}
        top = max(contributions, key=contributions.__getitem__) if contributions else None
        drivers = () if top is None else self._drivers(row, col, top, max_drivers)
        return Explanation(str(user_id), str(item_id), title, float(total[0, col]), contributions,
                           top, drivers)

    def encode_query(self, text: str) -> np.ndarray:
        """The unit-norm embedding of ``text`` by the model's encoder (loaded on first use).

        Args:
            text: the query.

        Raises:
            ValueError: the model has no encoder reference or no item embeddings.
        """
        if self.item_embeddings is None:
            raise ValueError("this model has no item embeddings, so it cannot answer text "
                             "queries")
        if self.encoder is None:
            raise ValueError("this model stores no text encoder reference, so it cannot "
                             "answer text queries")
        with self._lock:
            if self._text_encoder is None:
                from recsys_core.embed.config import EncoderConfig
                from recsys_core.embed.encoder import TextEncoder

                self._text_encoder = TextEncoder(EncoderConfig(
                    name_or_path=self.encoder, device="cpu", quantize="none"))
            encoder = self._text_encoder
        vector = unit_rows(encoder.encode([text]))[0]
        if vector.shape[0] != self.item_embeddings.shape[1]:
            raise ValueError(f"encoder {self.encoder!r} gives {vector.shape[0]}-d vectors but "
                             f"the items were embedded in {self.item_embeddings.shape[1]}-d")
        return vector

    def score_users(self, rows: np.ndarray, exclude_seen: bool = True) -> np.ndarray:
        """Fused scores (len(rows), n_items) of known user rows, seen items NaN; batch path.

        Args:
            rows: user indices (``users.index`` of known IDs).
            exclude_seen: set the users' training items to NaN.
        """
        return self.score_users_parts(rows, exclude_seen)[0]

    def score_users_parts(self, rows: np.ndarray, exclude_seen: bool = True
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``score_users`` and each source's weighted term of it (the contributions).

        Args:
            rows: user indices (``users.index`` of known IDs).
            exclude_seen: set the users' training items to NaN in the fused block.
        """
        rows = np.asarray(rows, dtype=np.int64)
        total, parts = self._fuse({name: self.fusion.sources[name].score_indices(rows)
                                   for name in self._active})
        if exclude_seen:
            block = self.seen[rows].tocoo()
            total[block.row, block.col] = np.nan
        return total, parts

    def knows(self, user_ids: Iterable[str]) -> list[str]:
        """The ids among ``user_ids`` that the model or any of its sources was trained on.

        Args:
            user_ids: candidate user ids.
        """
        vocabularies = [self.users, *(source.users for source in self.fusion.sources.values()
                                      if source.users is not None)]
        return sorted({str(u) for u in user_ids if any(u in v for v in vocabularies)})

    def without_users(self, user_ids: Iterable[str]) -> HybridRecommender | None:
        """A copy that no longer knows ``user_ids``: their rows and every source's state gone.

        Their ids, histories and seen items leave the model, popularity is counted again
        without them, and each source drops their per-user state (``Scorer.without_users``).
        What the sources learned over items keeps their share until the next retraining.
        Afterwards the model answers them like any unknown user (the popular fallback).

        Args:
            user_ids: the users; ids the model does not know are ignored.

        Returns:
            The new model, or ``None`` when a source cannot drop users (retrain instead).
        """
        ids = [str(u) for u in user_ids]
        fusion = self.fusion.without_users(ids)
        if fusion is None:
            return None
        keep = np.ones(len(self.users), dtype=bool)
        index = self.users.index(ids)
        keep[index[index >= 0]] = False
        clone = copy.copy(self)
        clone.fusion = fusion
        clone.users = Vocabulary(self.users.ids[keep])
        clone.history = self.history[keep]
        clone.times = None if self.times is None else sp.csr_matrix(self.times)[keep]
        clone.seen = self.seen[keep]
        clone.popularity = np.asarray(clone.seen.sum(axis=0)).ravel()
        clone._init_runtime()
        return clone

    @property
    def sources(self) -> list[str]:
        """Names of the sources the fusion weighs (non-zero weight)."""
        return list(self._active)

    # ----------------------------------------------------------------------- internals

    def _init_runtime(self) -> None:
        config = self.fusion.config
        self._active = [name for name, weight in config.weights.items() if weight != 0]
        self._text_encoder = None
        self._lock = threading.Lock()

    def _trained_scores(self, row: int) -> dict[str, np.ndarray]:
        index = np.array([row], dtype=np.int64)
        return {name: self.fusion.sources[name].score_indices(index) for name in self._active}

    def _folded_scores(self, history: History) -> dict[str, np.ndarray]:
        return {name: self.fusion.sources[name].fold_in_indices(history)
                for name in self._active}

    def _fuse(self, raw: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Fused scores and each source's weighted term, as ``WeightedFusion`` computes them.

        Returns the fused (n, n_items) block and the terms.
        """
        config = self.fusion.config
        blocks = FilledBlocks({name: normalise(values, config.normaliser)
                               for name, values in raw.items()})
        return blocks.combine(config), blocks.parts(config)

    def _ranked(self, total: np.ndarray, parts: Mapping[str, np.ndarray], k: int,
                excluded: np.ndarray | None) -> list[Recommendation]:
        if excluded is not None and len(excluded):
            total = total.copy()
            total[excluded] = np.nan
        top = _top_k(total, k)
        return [Recommendation(str(self.items.ids[i]), str(self.titles[i]), float(total[i]),
                               {name: float(part[0, i]) for name, part in parts.items()})
                for i in top]

    def _for_history(self, row: int, recent_items: Sequence[str], k: int,
                     exclude_seen: bool) -> list[Recommendation]:
        recent = self.items.index(list(recent_items))
        recent = recent[recent >= 0]
        items, weights = self._sequence(row) if row >= 0 else (np.zeros(0, np.int64),
                                                              np.zeros(0, np.float32))
        items = np.concatenate([items, recent])
        if not len(items):
            return self._popular(k)
        weights = np.concatenate([weights, np.ones(len(recent), dtype=np.float32)])
        history = History.of([items], len(self.items), [weights])
        total, parts = self._fuse(self._folded_scores(history))
        excluded = np.unique(items) if exclude_seen else None
        return self._ranked(total[0], parts, k, excluded) or self._popular(k, exclude=excluded)

    def _for_query(self, query: str, k: int) -> list[Recommendation]:
        if not isinstance(query, str) or not query.strip():
            raise ValueError("the text query is empty")
        scores = self.item_embeddings @ self.encode_query(query)
        top = _top_k(scores, k)
        return [Recommendation(str(self.items.ids[i]), str(self.titles[i]), float(scores[i]),
                               {QUERY_SOURCE: float(scores[i])}) for i in top]

    def _popular(self, k: int, exclude: np.ndarray | None = None) -> list[Recommendation]:
        total = max(self.popularity.sum(), 1.0)
        scores = self.popularity.astype(np.float32)
        if exclude is not None and len(exclude):
            scores = scores.copy()
            scores[exclude] = np.nan
        top = _top_k(scores, k)
        return [Recommendation(str(self.items.ids[i]), str(self.titles[i]),
                               float(self.popularity[i] / total), {}, fallback=True)
                for i in top]

    def _seen_items(self, row: int) -> np.ndarray:
        return self.seen.indices[self.seen.indptr[row]:self.seen.indptr[row + 1]]

    def _sequence(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """A known user's training items, oldest first (by time when known), and weights."""
        start, end = self.history.indptr[row], self.history.indptr[row + 1]
        items = self.history.indices[start:end].astype(np.int64)
        weights = self.history.data[start:end].astype(np.float32)
        if self.times is not None and self.times.nnz == self.history.nnz:
            order = np.argsort(self.times.data[start:end], kind="stable")
            items, weights = items[order], weights[order]
        return items, weights

    def _drivers(self, row: int, col: int, source: str, limit: int) -> tuple[Driver, ...]:
        """History items ranked by the source's score for ``col`` from each item alone."""
        items, weights = self._sequence(row)
        scorer = self.fusion.sources[source]
        influence = np.full(len(items), np.nan, dtype=np.float32)
        for start in range(0, len(items), DRIVER_CHUNK):
            chunk = slice(start, start + DRIVER_CHUNK)
            singles = History.of([np.array([i]) for i in items[chunk]], len(self.items),
                                 [np.array([w]) for w in weights[chunk]])
            influence[chunk] = scorer.fold_in_indices(singles)[:, col]
        if not np.isfinite(influence).any() or np.allclose(
                influence[np.isfinite(influence)], influence[np.isfinite(influence)][0]):
            return ()  # cannot fold in, or every item pulls alike (e.g. popularity)
        order = [i for i in np.argsort(-np.nan_to_num(influence, nan=-np.inf), kind="stable")
                 if np.isfinite(influence[i]) and influence[i] > 0][:limit]
        return tuple(Driver(str(self.items.ids[items[i]]), str(self.titles[items[i]]),
                            float(influence[i])) for i in order)

    # ----------------------------------------------------------------------- persistence

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for transient in ("_text_encoder", "_lock", "_active"):
            state.pop(transient, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # Models pickled before fold-in and text queries existed lack these.
        if "history" not in state:
            self.history = self.seen.copy()
            self.times = None
        self.__dict__.setdefault("encoder", None)
        self.__dict__.setdefault("item_embeddings", None)
        self._init_runtime()

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
                "n_items": len(self.items), "encoder": self.encoder,
                "text_queries": self.item_embeddings is not None and self.encoder is not None,
                **(meta or {})}
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


def _embeddings(given: np.ndarray | None, train: InteractionData, fusion: WeightedFusion
                ) -> np.ndarray | None:
    """Unit item embeddings: given, else the data's, else a text-similarity source's."""
    for candidate in (given, train.item_embeddings):
        if candidate is not None:
            if len(candidate) != len(train.items):
                raise ValueError("item_embeddings must have one row per item")
            return unit_rows(candidate)
    for source in fusion.sources.values():
        if isinstance(source, TextSimilarity) and source.item_vectors is not None:
            return source.item_vectors  # already unit rows; shared, so pickled once
    return None


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the ``k`` highest finite scores, best first (ties: lower index)."""
    top = top_k(scores[None, :], k)[0]
    return top[top >= 0]
