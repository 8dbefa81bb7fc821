"""Embedding tasks: plan the shards the cache lacks, embed one, cache one, store the run's.

Composed by the ``embed`` subflow (``flows.embed``). Shard tasks only compute, from their
parameters alone (a worker's environment and files are not the flow's).
"""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.embed.cache import EmbeddingCache
from recsys_core.embed.config import EncoderConfig
from recsys_core.embed.engine import Shard, plan_shards, shard_size_for, shared_encoder
from recsys_core.embed.source import resolve_model_path
from recsys_core.runstore import RunStore
from tasks.common import CACHED


def encoder_config(encoder: str) -> EncoderConfig:
    """The encoder's config on the settings' device."""
    return EncoderConfig(name_or_path=encoder, device=get_settings().device)


@task(cache_policy=NO_CACHE)
def check_encoder(encoder: str) -> str:
    """Fail at once, before anything is written, when the encoder cannot be found."""
    return str(resolve_model_path(encoder))


@task
def plan_embedding(run: str, encoder: str) -> list[Shard]:
    """Shards of the run's distinct item documents that the cache lacks."""
    settings = get_settings()
    text_encoder = shared_encoder(encoder_config(encoder))
    shards = plan_shards(RunStore(run).documents(), text_encoder.encoder_id,
                         EmbeddingCache(settings.warehouse_path),
                         shard_size_for(text_encoder, settings.shard_documents))
    get_run_logger().info("%d documents to embed in %d shards",
                          sum(len(s) for s in shards), len(shards))
    return shards


@task(cache_policy=NO_CACHE)
def embed_shard(shard: Shard, config: EncoderConfig) -> np.ndarray:
    """Embed one shard's documents (no writes: the flow caches the vectors)."""
    return shared_encoder(config).encode(list(shard.texts))


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def cache_shard(shard: Shard, vectors: np.ndarray, encoder: str) -> int:
    """Commit one shard's vectors to the embedding cache; returns the rows inserted."""
    encoder_id = shared_encoder(encoder_config(encoder)).encoder_id
    return EmbeddingCache(get_settings().warehouse_path).put(encoder_id, shard.hashes, vectors)


@task(cache_policy=CACHED)
def store_embeddings(run: str, encoder: str) -> str:
    """Read the run's vectors from the cache and store them in the run; returns the path."""
    result, path = pipeline.embed_items(RunStore(run), get_settings(), encoder)
    get_run_logger().info("%d documents: %d from cache, %d embedded now (%s)", result.n_unique,
                          result.n_cached, result.n_embedded, path.name)
    return str(path)
