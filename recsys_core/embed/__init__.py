"""Language-model embeddings: item documents, user behaviour, encoder, device, cache.

Typical use (what the embed task does)::

    encoder = TextEncoder(EncoderConfig(name_or_path=settings.encoder, device=settings.device))
    cache = EmbeddingCache(settings.warehouse_path)
    item_vectors = embed_items(dataset.items, item_vocab, encoder, cache, progress=report)
"""

from recsys_core.embed.cache import EmbeddingCache
from recsys_core.embed.config import EncoderConfig
from recsys_core.embed.device import available_cores, resolve_device, set_cpu_threads
from recsys_core.embed.documents import (
    DocumentTemplate,
    document_hash,
    item_documents,
    render_document,
    tags_by_item,
)
from recsys_core.embed.encoder import Calibration, TextEncoder
from recsys_core.embed.engine import (
    EmbeddingRun,
    Shard,
    embed_documents,
    embed_shard,
    plan_shards,
    run_embedding,
)
from recsys_core.embed.items import embed_items, item_documents_for
from recsys_core.embed.pooling import pool, resolve_pooling
from recsys_core.embed.source import packaged_model_path, resolve_model_path
from recsys_core.embed.users import embed_user_behaviour, mean_item_embeddings, user_documents

__all__ = [
    "Calibration",
    "DocumentTemplate",
    "EmbeddingCache",
    "EmbeddingRun",
    "EncoderConfig",
    "Shard",
    "TextEncoder",
    "available_cores",
    "document_hash",
    "embed_documents",
    "embed_items",
    "embed_shard",
    "embed_user_behaviour",
    "item_documents",
    "item_documents_for",
    "mean_item_embeddings",
    "packaged_model_path",
    "plan_shards",
    "pool",
    "render_document",
    "resolve_device",
    "resolve_model_path",
    "resolve_pooling",
    "run_embedding",
    "set_cpu_threads",
    "tags_by_item",
    "user_documents",
]
