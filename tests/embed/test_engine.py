from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys_core.data.vocab import Vocabulary
from recsys_core.embed import (
    EmbeddingCache,
    TextEncoder,
    embed_documents,
    embed_items,
    embed_shard,
    item_documents_for,
    plan_shards,
    run_embedding,
)


class Stop(Exception):
    pass


def test_aligned_deduplicated_and_equal_to_encode(make_encoder: Callable[..., TextEncoder],
                                                  texts: list[str]) -> None:
    encoder = make_encoder(quantize="none")
    doubled = texts + texts[:5]
    run = run_embedding(doubled, encoder, cache=None, shard_size=16)
    assert run.embeddings.shape == (len(doubled), 32)
    assert (run.n_texts, run.n_unique, run.n_embedded, run.n_cached) == (65, 60, 60, 0)
    assert run.n_shards == 4 and encoder.documents_encoded == 60
    assert np.allclose(run.embeddings, make_encoder(quantize="none").encode(doubled), atol=1e-5)
    assert embed_documents([], encoder).shape == (0, 32)


def test_rerun_embeds_nothing_and_new_items_only(tmp_path: Path,
                                                 make_encoder: Callable[..., TextEncoder],
                                                 texts: list[str]) -> None:
    cache = EmbeddingCache(tmp_path / "warehouse.duckdb")
    first = make_encoder(quantize="none")
    vectors = embed_documents(texts[:50], first, cache, shard_size=16)
    assert first.documents_encoded == 50 and cache.count(first.encoder_id) == 50

    again = make_encoder(quantize="none")
    run = run_embedding(texts[:50], again, cache, shard_size=16)
    assert run.n_embedded == 0 and again.documents_encoded == 0
    assert "fp32" not in again._models  # a fully cached run loads no model
    assert np.allclose(run.embeddings, vectors)

    more = run_embedding(texts, again, cache, shard_size=16)
    assert more.n_embedded == 10 and again.documents_encoded == 10
    assert np.allclose(more.embeddings[:50], vectors)


def test_interrupted_run_resumes_where_it_stopped(tmp_path: Path,
                                                  make_encoder: Callable[..., TextEncoder],
                                                  texts: list[str]) -> None:
    cache = EmbeddingCache(tmp_path / "warehouse.duckdb")
    encoder = make_encoder(quantize="none")
    calls: list[tuple[int, int]] = []

    def crash_after_shard_2(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 20:
            raise Stop("killed mid-run")

    with pytest.raises(Stop):
        embed_documents(texts, encoder, cache, shard_size=10, progress=crash_after_shard_2)
    assert calls == [(0, 60), (10, 60), (20, 60)]
    assert cache.count(encoder.encoder_id) == 20  # finished shards were committed

    resumed = make_encoder(quantize="none")
    progress: list[tuple[int, int]] = []
    vectors = embed_documents(texts, resumed, cache, shard_size=10,
                              progress=lambda d, t: progress.append((d, t)))
    assert resumed.documents_encoded == 40 and progress[-1] == (40, 40)
    reference = make_encoder(quantize="none").encode(texts)
    assert np.allclose(vectors, reference, atol=1e-5)


def test_mapped_shards_then_collect(tmp_path: Path, make_encoder: Callable[..., TextEncoder],
                                    texts: list[str]) -> None:
    cache = EmbeddingCache(tmp_path / "warehouse.duckdb")
    encoder = make_encoder(quantize="none")
    shards = plan_shards(texts, encoder.encoder_id, cache, shard_size=25)
    assert [len(s) for s in shards] == [25, 25, 10] and [s.number for s in shards] == [0, 1, 2]
    for shard in shards:  # what a Prefect .map over shards would do
        embed_shard(shard, encoder, cache)
    assert plan_shards(texts, encoder.encoder_id, cache) == []
    collector = make_encoder(quantize="none")
    assert embed_documents(texts, collector, cache).shape == (60, 32)
    assert collector.documents_encoded == 0


def test_embed_items_in_vocabulary_order(tmp_path: Path,
                                         make_encoder: Callable[..., TextEncoder]) -> None:
    items = pl.DataFrame({"item_id": ["1", "2"], "title": ["toy story", "heat"],
                          "categories": [["comedy"], ["crime", "thriller"]]})
    vocab = Vocabulary(["2", "1"])
    encoder = make_encoder(quantize="none")
    vectors = embed_items(items, vocab, encoder, EmbeddingCache(tmp_path / "w.duckdb"))
    expected = encoder.encode(item_documents_for(items, vocab))
    assert vectors.shape == (2, 32) and np.allclose(vectors, expected, atol=1e-5)
