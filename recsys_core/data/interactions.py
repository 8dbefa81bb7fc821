"""InteractionData: the typed input every scorer trains on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys_core.data import schema as S
from recsys_core.data.vocab import Vocabulary


@dataclass(frozen=True)
class InteractionData:
    """Users x items weights over fixed vocabularies, plus what content models need.

    The vocabularies cover the whole catalogue and user base (built once at feature time),
    so items or users with no training interactions have empty rows/columns but still exist:
    content sources can score them, CF sources give them NaN.

    Args:
        matrix: CSR users x items, summed interaction weights.
        users: user vocabulary (rows).
        items: item vocabulary (columns).
        times: CSR with the same pattern as ``matrix`` holding each pair's latest timestamp
            (seconds since epoch), for sequence models; ``None`` when order is unknown.
        item_embeddings: float32 (n_items, d), L2-normalised text embeddings aligned with
            ``items``; ``None`` when no encoder ran.
        item_titles: titles aligned with ``items``.
    """

    matrix: sp.csr_matrix
    users: Vocabulary
    items: Vocabulary
    times: sp.csr_matrix | None = None
    item_embeddings: np.ndarray | None = None
    item_titles: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.users), len(self.items)):
            raise ValueError(
                f"matrix shape {self.matrix.shape} does not match vocabularies "
                f"({len(self.users)} users, {len(self.items)} items)"
            )
        if self.item_embeddings is not None and len(self.item_embeddings) != len(self.items):
            raise ValueError("item_embeddings must have one row per item")

    @property
    def n_users(self) -> int:
        """Number of users in the vocabulary."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary."""
        return len(self.items)

    def sequence(self, user_index: int) -> np.ndarray:
        """Item indices the user touched, oldest first (by ``times`` when known)."""
        start, end = self.matrix.indptr[user_index], self.matrix.indptr[user_index + 1]
        items = self.matrix.indices[start:end]
        if self.times is None:
            return items
        order = np.argsort(self.times.data[start:end], kind="stable")
        return items[order]

    def with_matrix(self, matrix: sp.csr_matrix, times: sp.csr_matrix | None = None
                    ) -> InteractionData:
        """A copy over the same vocabularies and content with other interactions."""
        return InteractionData(matrix, self.users, self.items, times, self.item_embeddings,
                               self.item_titles)

    @classmethod
    def from_frame(
        cls,
        interactions: pl.DataFrame,
        users: Vocabulary,
        items: Vocabulary,
        item_embeddings: np.ndarray | None = None,
        item_titles: np.ndarray | None = None,
    ) -> InteractionData:
        """Build from a canonical interactions frame (``user_id``, ``item_id``, ``weight``, ``ts``).

        Duplicate (user, item) pairs are summed; rows naming IDs outside the vocabularies
        raise ``ValueError``.

        Args:
            interactions: canonical interactions.
            users: user vocabulary.
            items: item vocabulary.
            item_embeddings: optional embeddings aligned with ``items``.
            item_titles: optional titles aligned with ``items``.
        """
        rows = users.index(interactions[S.USER_ID])
        cols = items.index(interactions[S.ITEM_ID])
        if (rows < 0).any() or (cols < 0).any():
            raise ValueError("interactions name users or items outside the vocabularies")
        weights = (interactions[S.WEIGHT].fill_null(1.0).to_numpy().astype(np.float32)
                   if S.WEIGHT in interactions.columns
                   else np.ones(len(rows), dtype=np.float32))
        shape = (len(users), len(items))
        matrix = sp.csr_matrix((weights, (rows, cols)), shape=shape, dtype=np.float32)
        matrix.sum_duplicates()
        times = None
        if S.TS in interactions.columns and interactions[S.TS].null_count() == 0:
            seconds = interactions[S.TS].dt.epoch("s").to_numpy().astype(np.float64)
            # Latest timestamp per pair: coo->csr sums duplicates, so take the max by hand.
            order = np.lexsort((seconds, cols, rows))
            key = rows[order] * shape[1] + cols[order]
            last = np.r_[key[1:] != key[:-1], True]
            times = sp.csr_matrix(
                (seconds[order][last], (rows[order][last], cols[order][last])), shape=shape
            )
            times.sort_indices()
        matrix.sort_indices()
        return cls(matrix, users, items, times, item_embeddings, item_titles)
