"""User vectors from behaviour: rendered as text and embedded, or the mean of item vectors.

Both return float32 ``(n_users, d)`` arrays aligned with ``data.users``; a user with no
interactions gets a zero row.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.embed.cache import EmbeddingCache
from recsys_core.embed.encoder import TextEncoder
from recsys_core.embed.engine import Progress, embed_documents

log = logging.getLogger(__name__)

Order = Literal["recent", "strongest"]


def user_documents(
    data: InteractionData,
    max_items: int = 20,
    order: Order = "recent",
    separator: str = "; ",
    prefix: str = "",
) -> list[str]:
    """Each user's behaviour as text: the titles of their top ``max_items`` interactions.

    Args:
        data: interactions with ``item_titles`` (item IDs stand in where a title is missing).
        max_items: most titles per user.
        order: ``recent`` (latest first, stronger first on ties; falls back to ``strongest``
            when ``data.times`` is ``None``) or ``strongest`` (highest weight first, latest
            first on ties).
        separator: between titles.
        prefix: put before each non-empty document (e.g. ``"Watched: "``).

    Returns:
        One document per user, aligned with ``data.users``; ``""`` for users with no
        interactions.
    """
    titles = _titles(data)
    documents = []
    for rows in _top_items(data, max_items, order):
        documents.append(prefix + separator.join(titles[rows]) if len(rows) else "")
    return documents


def embed_user_behaviour(
    data: InteractionData,
    encoder: TextEncoder,
    cache: EmbeddingCache | None = None,
    max_items: int = 20,
    order: Order = "recent",
    shard_size: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed each user's behaviour text (see ``user_documents``).

    Args:
        data: interactions with ``item_titles``.
        encoder: the text encoder.
        cache: the embedding cache (user documents are keyed by content like any other).
        max_items: most titles per user.
        order: ``recent`` or ``strongest``.
        shard_size: most documents per shard (``None``: the engine's default).
        progress: ``progress(done, total)`` per shard.

    Returns:
        float32 (n_users, d), L2-normalised rows (zero for users with no interactions).
    """
    documents = user_documents(data, max_items=max_items, order=order)
    active = np.flatnonzero([bool(doc) for doc in documents])
    vectors = embed_documents([documents[i] for i in active], encoder, cache, shard_size,
                              progress)
    out = np.zeros((data.n_users, vectors.shape[1]), dtype=np.float32)
    out[active] = vectors
    return out


def mean_item_embeddings(
    data: InteractionData,
    weighting: Literal["weight", "uniform"] = "weight",
    max_items: int | None = None,
    item_embeddings: np.ndarray | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """Each user's (weighted) mean of the embeddings of the items they interacted with.

    Args:
        data: interactions.
        weighting: ``weight`` uses interaction weights, ``uniform`` counts each item once.
        max_items: keep only each user's ``max_items`` most recent (or, without times,
            strongest) items; ``None`` keeps all.
        item_embeddings: (n_items, d) aligned with ``data.items``; defaults to
            ``data.item_embeddings``.
        normalize: L2-normalise the rows.

    Returns:
        float32 (n_users, d); zero rows for users with no interactions.

    Raises:
        ValueError: no item embeddings, or embeddings not aligned with the items.
    """
    embeddings = data.item_embeddings if item_embeddings is None else item_embeddings
    if embeddings is None:
        raise ValueError("mean_item_embeddings needs item embeddings (none on the data)")
    if len(embeddings) != data.n_items:
        raise ValueError("item_embeddings must have one row per item")
    weights = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
    if weighting == "uniform":
        weights.data[:] = 1.0
    elif weighting != "weight":
        raise ValueError(f"unknown weighting {weighting!r}")
    if max_items is not None:
        keep = np.zeros(weights.nnz, dtype=bool)
        for user, rows in enumerate(_top_positions(data, max_items, "recent")):
            keep[weights.indptr[user] + rows] = True
        weights.data[~keep] = 0.0
        weights.eliminate_zeros()
    totals = np.asarray(abs(weights).sum(axis=1)).ravel()
    out = np.asarray(weights @ np.asarray(embeddings, dtype=np.float32), dtype=np.float32)
    active = totals > 0
    out[active] /= totals[active, None]
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
    return out


def _titles(data: InteractionData) -> np.ndarray:
    ids = data.items.ids
    if data.item_titles is None:
        return np.asarray(ids, dtype=object)
    titles = np.asarray(data.item_titles, dtype=object)
    blank = np.fromiter((t is None or not str(t).strip() for t in titles), dtype=bool,
                        count=len(titles))
    titles = np.array([" ".join(str(t).split()) for t in titles], dtype=object)
    titles[blank] = ids[blank]
    return titles


def _aligned_times(data: InteractionData) -> np.ndarray | None:
    """Timestamps aligned with ``data.matrix.data`` (``None`` when order is unknown)."""
    if data.times is None:
        return None
    matrix, times = data.matrix, data.times.tocsr()
    if (np.array_equal(times.indptr, matrix.indptr)
            and np.array_equal(times.indices, matrix.indices)):
        return np.asarray(times.data, dtype=np.float64)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return np.asarray(times[rows, matrix.indices], dtype=np.float64).ravel()


def _top_positions(data: InteractionData, max_items: int, order: Order) -> list[np.ndarray]:
    """Per user, positions within their CSR row of their top ``max_items`` interactions."""
    if order not in ("recent", "strongest"):
        raise ValueError(f"unknown order {order!r}")
    times = _aligned_times(data)
    if order == "recent" and times is None:
        log.warning("no interaction times: ordering users' items by weight instead")
        order = "strongest"
    matrix = data.matrix
    out = []
    for user in range(matrix.shape[0]):
        start, end = matrix.indptr[user], matrix.indptr[user + 1]
        weight = -np.asarray(matrix.data[start:end], dtype=np.float64)
        recency = -times[start:end] if times is not None else np.zeros(end - start)
        keys = (weight, recency) if order == "recent" else (recency, weight)
        out.append(np.lexsort(keys)[:max_items])  # lexsort sorts by the last key first
    return out


def _top_items(data: InteractionData, max_items: int, order: Order) -> list[np.ndarray]:
    indices = data.matrix.indices
    return [
        indices[data.matrix.indptr[user] + rows]
        for user, rows in enumerate(_top_positions(data, max_items, order))
    ]
