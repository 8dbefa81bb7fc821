"""Precomputed top-K lists: every known user's best K unseen items under one model version.

``lifecycle.batch.precompute`` scores every user in blocks when a version is registered; the
lists are saved in the version's model folder (``TOP_K_DIR``) as plain ``.npy`` arrays that
``TopK.load`` maps into memory, so a server's workers share one copy through the page cache
and opening them reads nothing per user. A known user's answer with ``k <= K`` is then a slice:
the same items, titles, scores and per-source contributions the model computes online.

Per user and list entry the arrays hold the item (int32), the fused score (float32) and each
weighted source's contribution (float32): ``(8 + 4 * n_sources) * K`` bytes per user.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recsys_core.model.recommendation import Recommendation

if TYPE_CHECKING:
    import polars as pl

TOP_K_DIR = "top_k"
"""The lists' folder inside a model folder."""
_META = "meta.json"
_ARRAYS = ("items", "scores", "contributions", "user_ids", "user_order", "item_ids", "titles")


class TopK:
    """Every known user's top-K of one model version, with scores and contributions.

    Args:
        user_ids: the users, one per row (the model's user order).
        item_ids: every item ID (the columns ``items`` points into).
        titles: every item's title, aligned with ``item_ids``.
        items: int (n_users, K) item positions, best first; -1 past a user's last item (a user
            with fewer than K scorable unseen items).
        scores: float (n_users, K) fused scores aligned with ``items`` (NaN past the last).
        contributions: float (n_users, K, len(sources)) each source's weighted term.
        sources: the names of the contributing sources, in ``contributions`` order.
        user_order: positions that sort ``user_ids`` (computed when not given).
    """

    def __init__(self, user_ids: np.ndarray, item_ids: np.ndarray, titles: np.ndarray,
                 items: np.ndarray, scores: np.ndarray, contributions: np.ndarray,
                 sources: Sequence[str], user_order: np.ndarray | None = None) -> None:
        if items.shape != scores.shape or contributions.shape != (*items.shape, len(sources)):
            raise ValueError("items, scores and contributions must have matching shapes")
        if len(user_ids) != items.shape[0] or len(titles) != len(item_ids):
            raise ValueError("one user ID per row and one title per item are needed")
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.titles = titles
        self.items = items
        self.scores = scores
        self.contributions = contributions
        self.sources = tuple(sources)
        self.user_order = (np.argsort(np.asarray(user_ids, dtype=str), kind="stable")
                           if user_order is None else user_order)

    @property
    def k(self) -> int:
        """K: the longest list stored."""
        return int(self.items.shape[1])

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @property
    def bytes_per_user(self) -> int:
        """Bytes of list data per user (items, scores, contributions)."""
        return int(self.items.itemsize + self.scores.itemsize
                   + self.contributions.itemsize * len(self.sources)) * self.k

    def row(self, user_id: str) -> int:
        """The row of ``user_id``, or -1 when it has no list.

        Args:
            user_id: the user.
        """
        if not len(self):
            return -1
        position = int(np.searchsorted(self.user_ids, user_id, sorter=self.user_order))
        if position == len(self):
            return -1
        row = int(self.user_order[position])
        return row if self.user_ids[row] == user_id else -1

    def recommend(self, row: int, k: int) -> list[Recommendation]:
        """The first ``k`` entries of a user's list (fewer when the list is shorter).

        Args:
            row: the user's row (``row``).
            k: how many items (at most ``K`` are stored).
        """
        items = self.items[row, :k].tolist()
        count = next((i for i, item in enumerate(items) if item < 0), len(items))
        scores = self.scores[row, :count].tolist()
        parts = self.contributions[row, :count].tolist()
        return [Recommendation(str(self.item_ids[item]), str(self.titles[item]), score,
                               dict(zip(self.sources, part, strict=True)))
                for item, score, part in zip(items[:count], scores, parts, strict=True)]

    def frame(self) -> pl.DataFrame:
        """The lists as rows ``user_id, rank, item_id, title, score`` (batch output's form)."""
        import polars as pl

        user_pos, rank = np.nonzero(self.items >= 0)
        items = self.items[user_pos, rank]
        return pl.DataFrame({
            "user_id": np.asarray(self.user_ids, dtype=str)[user_pos],
            "rank": (rank + 1).astype(np.int32),
            "item_id": np.asarray(self.item_ids, dtype=str)[items],
            "title": np.asarray(self.titles, dtype=str)[items],
            "score": self.scores[user_pos, rank].astype(np.float64),
        }, schema={"user_id": pl.String, "rank": pl.Int32, "item_id": pl.String,
                   "title": pl.String, "score": pl.Float64})

    def save(self, folder: str | Path) -> Path:
        """Write the lists into ``folder`` (replaced whole: written aside, then renamed).

        Args:
            folder: the target folder (``<model folder>/TOP_K_DIR``).
        """
        target = Path(folder)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        arrays = {"items": self.items.astype(np.int32), "scores": self.scores.astype(np.float32),
                  "contributions": self.contributions.astype(np.float32),
                  "user_ids": _text(self.user_ids), "user_order": self.user_order,
                  "item_ids": _text(self.item_ids), "titles": _text(self.titles)}
        for name, values in arrays.items():
            np.save(tmp / f"{name}.npy", values, allow_pickle=False)
        (tmp / _META).write_text(json.dumps({"k": self.k, "users": len(self),
                                             "sources": list(self.sources)}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, folder: str | Path) -> TopK:
        """Map the lists ``save`` wrote (read-only, memory-mapped).

        Args:
            folder: the lists' folder.
        """
        folder = Path(folder)
        meta = json.loads((folder / _META).read_text())
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                  for name in _ARRAYS}
        return cls(arrays["user_ids"], arrays["item_ids"], arrays["titles"], arrays["items"],
                   arrays["scores"], arrays["contributions"], meta["sources"],
                   arrays["user_order"])


def _text(values: np.ndarray) -> np.ndarray:
    """Fixed-width unicode (``np.save`` stores it without pickle; ``mmap`` maps it)."""
    out = np.asarray([str(v) for v in values], dtype=str)
    return out if out.size else np.zeros(0, dtype="<U1")
