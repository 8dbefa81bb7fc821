"""Item vectors aligned with an item Vocabulary (what ``InteractionData.item_embeddings`` is)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.vocab import Vocabulary
from recsys_core.embed.cache import EmbeddingCache
from recsys_core.embed.documents import DocumentTemplate, item_documents
from recsys_core.embed.encoder import TextEncoder
from recsys_core.embed.engine import Progress, embed_documents

log = logging.getLogger(__name__)


def item_documents_for(
    items: pl.DataFrame,
    vocabulary: Vocabulary,
    template: DocumentTemplate | None = None,
    tags: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Item documents in ``vocabulary`` order.

    Args:
        items: canonical items (one row per item; extra rows are ignored).
        vocabulary: the item vocabulary the documents must align with.
        template: the document template.
        tags: item_id -> tags.

    Raises:
        ValueError: vocabulary items with no row in ``items``, or duplicate item rows.
    """
    ids = items[S.ITEM_ID].cast(pl.String)
    if ids.n_unique() != len(ids):
        raise ValueError("items has duplicate item_id rows")
    position = vocabulary.index(ids.to_numpy())
    missing = len(vocabulary) - int((position >= 0).sum())
    if missing:
        raise ValueError(f"{missing} vocabulary items have no row in items")
    rows = np.empty(len(vocabulary), dtype=np.int64)
    rows[position[position >= 0]] = np.flatnonzero(position >= 0)
    return item_documents(items[rows], template, tags)


def embed_items(
    items: pl.DataFrame,
    vocabulary: Vocabulary,
    encoder: TextEncoder,
    cache: EmbeddingCache | None = None,
    template: DocumentTemplate | None = None,
    tags: Mapping[str, Sequence[str]] | None = None,
    shard_size: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed every vocabulary item's document: float32 (len(vocabulary), d), L2-normalised.

    Args:
        items: canonical items covering the vocabulary.
        vocabulary: the item vocabulary (row order of the result).
        encoder: the text encoder.
        cache: the embedding cache.
        template: the document template.
        tags: item_id -> tags.
        shard_size: most documents per shard (``None``: the engine's default).
        progress: ``progress(done, total)`` per shard.
    """
    documents = item_documents_for(items, vocabulary, template, tags)
    return embed_documents(documents, encoder, cache, shard_size, progress)
