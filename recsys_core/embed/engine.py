"""embed_documents: texts in, vectors out, through the cache, shard by shard.

A Prefect task can call ``embed_documents`` whole (progress through the callback), or map
``embed_shard`` over ``plan_shards`` and then call ``embed_documents``, which then finds every
vector in the cache and embeds nothing.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recsys_core.embed.cache import EmbeddingCache
from recsys_core.embed.config import EncoderConfig
from recsys_core.embed.documents import document_hash
from recsys_core.embed.encoder import TextEncoder

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 2048
"""Shard size for ``plan_shards`` when none is given."""
BATCHES_PER_SHARD = 64
"""``run_embedding``'s default shard: 64 of the encoder's batches (2048 texts on CPU, 32768 on
a GPU), a few seconds of work per cache commit and progress report."""
Progress = Callable[[int, int], None]
"""``progress(done, total)``: documents embedded so far out of those the cache lacked."""


@dataclass(frozen=True)
class Shard:
    """One unit of embedding work: distinct documents the cache lacks.

    Args:
        number: position among the run's shards (0-based).
        texts: the documents.
        hashes: their ``document_hash`` values, aligned with ``texts``.
    """

    number: int
    texts: tuple[str, ...]
    hashes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class EmbeddingRun:
    """What ``run_embedding`` returns: the vectors and how they were obtained.

    Args:
        embeddings: float32 (n_texts, dim), aligned with the input texts.
        n_texts: input texts.
        n_unique: distinct texts among them.
        n_cached: distinct texts found in the cache.
        n_embedded: distinct texts embedded in this run.
        n_shards: shards embedded in this run.
        seconds: wall time.
        numeric_path: the encoder's numeric path (``fp32``, ``bf16``, ``fp16``, ``int8``).
    """

    embeddings: np.ndarray
    n_texts: int
    n_unique: int
    n_cached: int
    n_embedded: int
    n_shards: int
    seconds: float
    numeric_path: str


def plan_shards(texts: Sequence[str], encoder_id: str, cache: EmbeddingCache | None,
                shard_size: int = DEFAULT_SHARD_SIZE) -> list[Shard]:
    """Split the distinct documents the cache lacks into shards, in first-seen order.

    Args:
        texts: the documents.
        encoder_id: the encoder's ``encoder_id``.
        cache: the cache, or ``None`` (then every distinct document is work).
        shard_size: most documents per shard.
    """
    _, unique, _, _ = _plan(texts, encoder_id, cache)
    return _shards(unique, shard_size)


@functools.lru_cache(maxsize=4)
def shared_encoder(config: EncoderConfig) -> TextEncoder:
    """One ``TextEncoder`` per config and process, so shard after shard reuses the loaded model.

    A worker process (a Dask worker, say) loads and calibrates the model on its first shard
    only.

    Args:
        config: the encoder's settings.
    """
    return TextEncoder(config)


def shard_size_for(encoder: TextEncoder, shard_size: int | None = None) -> int:
    """Documents per shard: ``shard_size``, or ``BATCHES_PER_SHARD`` of the encoder's batches.

    Args:
        encoder: the encoder.
        shard_size: an explicit size.
    """
    size = shard_size or encoder.batch_size * BATCHES_PER_SHARD
    if size < 1:
        raise ValueError("shard_size must be positive")
    return size


def embed_shard(shard: Shard, encoder: TextEncoder, cache: EmbeddingCache | None = None
                ) -> np.ndarray:
    """Embed one shard and commit it to the cache.

    Args:
        shard: from ``plan_shards``.
        encoder: the encoder.
        cache: where the vectors are committed (one transaction per shard).
    """
    vectors = encoder.encode(list(shard.texts))
    if cache is not None:
        cache.put(encoder.encoder_id, shard.hashes, vectors)
    log.debug("shard %d: %d documents embedded", shard.number, len(shard))
    return vectors


def run_embedding(
    texts: Sequence[str],
    encoder: TextEncoder,
    cache: EmbeddingCache | None = None,
    shard_size: int | None = None,
    progress: Progress | None = None,
) -> EmbeddingRun:
    """Embed ``texts``: cached vectors are read, the rest embedded shard by shard.

    Each shard is committed to the cache as soon as it is done, so an interrupted run loses
    at most the shard in flight; identical texts are embedded once.

    Args:
        texts: the documents.
        encoder: the encoder.
        cache: the embedding cache, or ``None`` to embed everything.
        shard_size: most documents per shard (one cache commit and progress call each);
            ``None``: ``BATCHES_PER_SHARD`` of the encoder's batches.
        progress: called as ``progress(done, total)`` before the first and after each shard.
    """
    if isinstance(texts, str):
        raise TypeError("run_embedding takes a sequence of texts, not one string")
    shard_size = shard_size_for(encoder, shard_size)
    started = time.perf_counter()
    hashes, unique, found_hashes, found_vectors = _plan(texts, encoder.encoder_id, cache)
    shards = _shards(unique, shard_size)
    total = sum(len(shard) for shard in shards)
    vectors: dict[str, np.ndarray] = dict(zip(found_hashes, found_vectors, strict=True))
    if progress is not None:
        progress(0, total)
    done = 0
    for shard in shards:
        vectors.update(zip(shard.hashes, embed_shard(shard, encoder, cache), strict=True))
        done += len(shard)
        if progress is not None:
            progress(done, total)
    if hashes:
        embeddings = np.stack([vectors[h] for h in hashes]).astype(np.float32, copy=False)
    else:
        embeddings = np.zeros((0, encoder.dim), dtype=np.float32)
    run = EmbeddingRun(embeddings, len(hashes), len(unique), len(found_hashes), total,
                       len(shards), time.perf_counter() - started, encoder.numeric_path)
    log.info(
        "embedded %d of %d distinct documents (%d texts, %d from cache) with %s [%s] in %.1fs",
        run.n_embedded, run.n_unique, run.n_texts, run.n_cached, encoder.label,
        run.numeric_path, run.seconds,
    )
    return run


def embed_documents(
    texts: Sequence[str],
    encoder: TextEncoder,
    cache: EmbeddingCache | None = None,
    shard_size: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed ``texts`` through the cache: float32 (len(texts), dim), aligned with ``texts``.

    Args:
        texts: the documents.
        encoder: the encoder.
        cache: the embedding cache, or ``None`` to embed everything.
        shard_size: most documents per shard (one cache commit and progress call each);
            ``None``: ``BATCHES_PER_SHARD`` of the encoder's batches.
        progress: called as ``progress(done, total)`` before the first and after each shard.
    """
    return run_embedding(texts, encoder, cache, shard_size, progress).embeddings


def _plan(texts: Sequence[str], encoder_id: str, cache: EmbeddingCache | None
          ) -> tuple[list[str], dict[str, str], list[str], np.ndarray]:
    """Hashes of ``texts``; distinct uncached hash -> text; cached hashes and vectors."""
    hashes = [document_hash(text) for text in texts]
    distinct = dict(zip(hashes, texts, strict=True))
    keys = list(distinct)
    if cache is None or not keys:
        return hashes, distinct, [], np.zeros((0, 0), dtype=np.float32)
    found, cached = cache.get(encoder_id, keys)
    found_hashes = [h for h, hit in zip(keys, found, strict=True) if hit]
    missing = {h: distinct[h] for h, hit in zip(keys, found, strict=True) if not hit}
    return hashes, missing, found_hashes, cached


def _shards(missing: dict[str, str], shard_size: int) -> list[Shard]:
    items = list(missing.items())
    return [
        Shard(number, tuple(t for _, t in chunk), tuple(h for h, _ in chunk))
        for number, chunk in enumerate(
            items[start:start + shard_size] for start in range(0, len(items), shard_size)
        )
    ]
