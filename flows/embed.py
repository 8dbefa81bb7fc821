"""Embedding subflow: shard the documents the cache lacks, embed shards in parallel, report.

Shard tasks only compute (on threads or on Dask workers, see ``flows.runner``); the vectors
come back to the flow, which writes each finished shard to the DuckDB cache at once, one
shard at a time, so the single-writer file never sees two writers and a killed run keeps
every shard it finished. The last step reads every vector from the cache into the run.
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.logging import get_run_logger

from flows.runner import sharded
from tasks.embed import cache_shard, embed_shard, encoder_config, plan_embedding, store_embeddings


@flow(name="embed")
def embed_flow(run: str, encoder: str) -> str:
    """Embed the run's item documents shard by shard; returns the embeddings' path."""
    logger = get_run_logger()
    shards = plan_embedding(run, encoder)
    total = sum(len(shard) for shard in shards)
    if shards:
        progress = create_progress_artifact(0.0, key="embedding-progress",
                                            description=f"{total} documents")
        assert isinstance(progress, UUID)  # called from sync code: the sync implementation ran
        mapped = embed_shard.map(shards, unmapped(encoder_config(encoder)))
        futures = dict(zip(mapped, shards, strict=True))
        done = 0
        for future in as_completed(list(futures)):
            shard = futures[future]
            cache_shard(shard, future.result(), encoder)
            done += len(shard)
            update_progress_artifact(progress, 100.0 * done / total)
            logger.info("embedded %d/%d documents (shard %d)", done, total, shard.number)
    return store_embeddings(run, encoder)


def embed(run: str, encoder: str) -> str:
    """Run ``embed_flow`` on the configured task runner (one thread when local)."""
    return sharded(embed_flow, local_threads=1)(run, encoder)
