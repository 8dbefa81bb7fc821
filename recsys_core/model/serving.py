"""What a server answers from: a version's model folder, its precomputed lists, fresh events.

A known user's request for at most K items is answered from the version's precomputed lists
(``TopK``): the same items, titles, scores and contributions the model computes online, as a
slice. The model scores online otherwise: a fold-in or text request, ``k > K``, an unknown
user, a version without lists, and a user whose list is stale because they have events newer
than the version's training snapshot (``EventFeed``). Such a user is folded in: their
training history, then those events, then any ``recent_items`` of the request, so an item
they just touched is excluded and its neighbours move up, without retraining or a restart.

The model itself (its sources import torch) is unpickled on first need, so an answer from
the lists imports NumPy only; servers load it up front (``warm``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recsys_core.model.events import EventFeed
from recsys_core.model.folder import read_meta
from recsys_core.model.precomputed import TOP_K_DIR, TopK
from recsys_core.model.recommendation import Recommendation

if TYPE_CHECKING:
    from recsys_core.model.hybrid import HybridRecommender


class ServedModel:
    """A registered version as served: precomputed lists first, the model online otherwise.

    Args:
        folder: the version's model folder (``HybridRecommender.save``).
        top_k: its precomputed lists, if it has them.
        events: the fresh events of its training snapshot, if any are followed.
        model: the loaded model (default: loaded from ``folder`` on first need).
    """

    def __init__(self, folder: str | Path, top_k: TopK | None = None,
                 events: EventFeed | None = None, model: HybridRecommender | None = None
                 ) -> None:
        self.folder = Path(folder)
        self.top_k = top_k
        self.events = events
        self._model = model
        self._lock = threading.Lock()

    @classmethod
    def open(cls, folder: str | Path, events_dir: str | Path | None = None,
             poll_s: float = 2.0) -> ServedModel:
        """Open a model folder: map its lists, follow its snapshot's events; load nothing else.

        Args:
            folder: the version's model folder.
            events_dir: the exported events folder (``Settings.events_dir``); ``None``
                serves the version as trained.
            poll_s: seconds between looks at ``events_dir``.
        """
        folder = Path(folder)
        lists = folder / TOP_K_DIR
        snapshot = read_meta(folder).get("snapshot_id")
        events = (EventFeed(events_dir, str(snapshot), poll_s)
                  if events_dir is not None and snapshot else None)
        return cls(folder, TopK.load(lists) if lists.is_dir() else None, events)

    @property
    def model(self) -> HybridRecommender:
        """The model, loaded on first use."""
        with self._lock:
            if self._model is None:
                from recsys_core.model.hybrid import HybridRecommender

                self._model = HybridRecommender.load(self.folder)
            return self._model

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (an answer from the lists does not load it)."""
        return self._model is not None

    def warm(self) -> None:
        """Load the model, and its text encoder when it answers text queries (servers)."""
        model = self.model
        if model.item_embeddings is not None and model.encoder is not None:
            model.encode_query("warm up")

    def recommend(self, user_id: str | None = None, k: int = 10, exclude_seen: bool = True,
                  *, recent_items: Sequence[str] | None = None, query: str | None = None
                  ) -> list[Recommendation]:
        """Top-``k`` items, as ``HybridRecommender.recommend`` answers (see the module).

        Args:
            user_id: the user.
            k: how many items (at least 1).
            exclude_seen: drop the user's training items, fresh events and recent items.
            recent_items: item IDs the user touched lately, oldest first.
            query: free text.

        Raises:
            ValueError: as ``HybridRecommender.recommend``.
        """
        if user_id is not None and query is None and k >= 1:
            fresh = [] if self.events is None else self.events.recent(user_id)
            if fresh:
                recent_items = [*fresh, *(recent_items or ())]
            elif recent_items is None and exclude_seen and self.top_k is not None \
                    and k <= self.top_k.k:
                row = self.top_k.row(user_id)
                if row >= 0:
                    return self.top_k.recommend(row, k)
        return self.model.recommend(user_id, k, exclude_seen, recent_items=recent_items,
                                    query=query)
