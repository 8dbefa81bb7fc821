"""Batch recommendation: top-k for every known user, to Parquet and a DuckDB table.

Users are scored in blocks through ``HybridRecommender.score_users_parts`` (one pass over the
sources per block), so memory stays at ``batch_size`` x items scores per source. The same
scoring gives a registered version its precomputed lists (``precompute``, ``publish_top_k``).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from recsys_core.config import Settings
from recsys_core.evaluation.ranking import top_k
from recsys_core.lifecycle.registry import (
    RegisteredVersion,
    alias_version,
    client,
    load_version,
    register,
)
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.model.precomputed import TopK

log = logging.getLogger(__name__)

TABLE = "recommendations"
COLUMNS = ("model_name", "model_version", "user_id", "rank", "item_id", "title", "score",
           "created_at")
_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    model_name VARCHAR, model_version VARCHAR, user_id VARCHAR, rank INTEGER,
    item_id VARCHAR, title VARCHAR, score DOUBLE, created_at TIMESTAMP
)"""


def top_k_all(model: HybridRecommender, k: int, batch_size: int = 512) -> pl.DataFrame:
    """Every known user's top-``k`` unseen items: ``user_id, rank, item_id, title, score``.

    Users with fewer than ``k`` scorable unseen items get fewer rows.

    Args:
        model: the recommender.
        k: items per user (at least 1).
        batch_size: users scored per block.
    """
    out = precompute(model, k, batch_size=batch_size).frame()
    log.info("top-%d for %d users: %d rows", k, len(model.users), out.height)
    return out


def top_k_users(model: HybridRecommender, start: int, stop: int, k: int,
                batch_size: int = 512) -> pl.DataFrame:
    """``top_k_all`` for the users at vocabulary positions ``start`` to ``stop`` (one shard).

    Args:
        model: the recommender.
        start: first user position.
        stop: one past the last user position (clipped to the vocabulary).
        k: items per user (at least 1).
        batch_size: users scored per block.
    """
    return precompute(model, k, start, stop, batch_size).frame()


def precompute(model: HybridRecommender, k: int, start: int = 0, stop: int | None = None,
               batch_size: int = 512) -> TopK:
    """Every known user's top-``k`` unseen items with scores and contributions, in blocks.

    The lists a registered version serves known users from (``TopK``), and the rows of the
    batch output. Each block of users is scored once (``score_users_parts``).

    Args:
        model: the recommender.
        k: items per user (at least 1; at most the catalogue is kept).
        start: first user position.
        stop: one past the last user position (default and clipped: every user).
        batch_size: users scored per block.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    stop = len(model.users) if stop is None else min(stop, len(model.users))
    start = min(start, stop)
    k = min(k, len(model.items))
    sources = model.sources
    items = np.full((stop - start, k), -1, dtype=np.int32)
    scores = np.full((stop - start, k), np.nan, dtype=np.float32)
    contributions = np.zeros((stop - start, k, len(sources)), dtype=np.float32)
    for first in range(start, stop, batch_size):
        rows = np.arange(first, min(first + batch_size, stop))
        total, parts = model.score_users_parts(rows)
        top = top_k(total, k)  # ties to the lower item index, as online answers break them
        keep = top >= 0
        top = np.where(keep, top, 0)
        values = np.take_along_axis(total, top, axis=1)
        block = slice(first - start, first - start + len(rows))
        items[block] = np.where(keep, top, -1)
        scores[block] = np.where(keep, values, np.nan)
        for s, name in enumerate(sources):
            contributions[block, :, s] = np.where(
                keep, np.take_along_axis(parts[name], top, axis=1), 0.0)
    return TopK(model.users.ids[start:stop], model.items.ids, model.titles, items, scores,
                contributions, sources)


def write_parquet(frame: pl.DataFrame, path: str | Path, model_name: str,
                  model_version: str) -> Path:
    """Write recommendations (with model name, version and time) to Parquet atomically.

    Args:
        frame: from ``top_k_all``.
        path: the Parquet file.
        model_name: registered model name.
        model_version: its version.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    stamped = frame.with_columns(
        pl.lit(model_name).alias("model_name"), pl.lit(str(model_version)).alias("model_version"),
        pl.lit(datetime.now(UTC).replace(tzinfo=None)).alias("created_at"),
    ).select(COLUMNS)
    tmp = target.with_name(f".{target.name}.tmp")
    stamped.write_parquet(tmp)
    os.replace(tmp, target)
    return target


def load_table(parquet: str | Path, warehouse: str | Path) -> int:
    """Replace the Parquet's model version in the warehouse table ``recommendations``.

    One transaction: the version's old rows are deleted and the new ones inserted, so a
    reader sees either the old or the new list, never a mix.

    Args:
        parquet: a file from ``write_parquet``.
        warehouse: the DuckDB file.

    Returns:
        The number of rows the version now has in the table.
    """
    frame = pl.read_parquet(parquet)
    versions = frame.select("model_name", "model_version").unique().rows()
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(_DDL)
        con.execute("BEGIN TRANSACTION")
        try:
            for name, version in versions:
                con.execute(f"DELETE FROM {TABLE} WHERE model_name = ? AND model_version = ?",
                            [name, version])
            con.register("incoming", frame.to_arrow())
            con.execute(f"INSERT INTO {TABLE} SELECT {', '.join(COLUMNS)} FROM incoming")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    log.info("loaded %d recommendations into %s.%s", frame.height, warehouse, TABLE)
    return frame.height


def publish_top_k(settings: Settings, lists: TopK, model_name: str, model_version: str) -> int:
    """Store a version's precomputed lists as its batch output: Parquet and the warehouse table.

    Args:
        settings: project settings (state folder, warehouse).
        lists: from ``precompute``.
        model_name: registered model name.
        model_version: the version the lists belong to.

    Returns:
        The number of rows the version now has in the ``recommendations`` table.
    """
    parquet = write_parquet(lists.frame(), output_path(settings, model_version, lists.k),
                            model_name, model_version)
    return load_table(parquet, settings.warehouse_path)


def register_with_top_k(model: HybridRecommender, model_dir: Path, report: dict, params: dict,
                        tags: dict[str, str], settings: Settings,
                        eval_run: str | Path | None = None
                        ) -> tuple[RegisteredVersion, TopK, int]:
    """Register a version with every known user's top-K and publish the lists as its output.

    Args:
        model: the recommender.
        model_dir: its saved folder.
        report: the evaluation report.
        params: configs to log.
        tags: run and version tags.
        settings: project settings (``top_k``, stores).
        eval_run: the run folder the report was measured on (``registry.register``).

    Returns:
        The version, its lists, and its rows in the ``recommendations`` table.
    """
    lists = precompute(model, settings.top_k)
    version = register(model, model_dir, report, params, tags, settings, eval_run=eval_run,
                       top_k=lists)
    return version, lists, publish_top_k(settings, lists, version.name, version.version)


class BatchResult(BaseModel):
    """Where a batch run wrote its recommendations.

    Args:
        parquet: the Parquet file.
        model_name: registered model name.
        model_version: the version that recommended.
        rows: recommendation rows written.
        users: users covered.
    """

    model_config = ConfigDict(frozen=True)

    parquet: Path
    model_name: str
    model_version: str
    rows: int
    users: int


def resolve_version(settings: Settings, alias: str) -> str:
    """The version number an alias (or a version number) names.

    Args:
        settings: project settings (model name, tracking store).
        alias: ``champion``, ``challenger`` or a version number.

    Raises:
        LookupError: the alias points at no version.
    """
    if str(alias).isdigit():
        return str(alias)
    found = alias_version(client(settings), settings.model_name, alias)
    if found is None:
        raise LookupError(f"model {settings.model_name!r} has no {alias!r} version: run "
                          "`recsys train` first")
    return str(found.version)


def output_path(settings: Settings, version: str, k: int) -> Path:
    """``RECSYS_HOME/recommendations/NAME-vVERSION-topK.parquet``.

    Args:
        settings: project settings.
        version: the model version.
        k: items per user.
    """
    return recommendations_dir(settings) / f"{settings.model_name}-v{version}-top{k}.parquet"


def recommendations_dir(settings: Settings) -> Path:
    """``RECSYS_HOME/recommendations``: every batch output and its shard parts.

    Args:
        settings: project settings.
    """
    return settings.home / "recommendations"


@functools.lru_cache(maxsize=2)
def _model(settings: Settings, version: str) -> HybridRecommender:
    """The registered version, loaded once per process (a worker serves many shards)."""
    return load_version(settings, version)


def recommend_shard(settings: Settings, version: str, start: int, stop: int, k: int) -> Path:
    """Top-``k`` of the users at positions ``start`` to ``stop``, to a Parquet part file.

    The part lies beside the final file, named by version, ``k`` and user range, so a rerun
    overwrites it.

    Args:
        settings: project settings (model name, tracking store, state folder).
        version: the model version.
        start: first user position.
        stop: one past the last user position.
        k: items per user.
    """
    frame = top_k_users(_model(settings, version), start, stop, k)
    final = output_path(settings, version, k)
    part = final.parent / f"{final.stem}.parts" / f"users-{start:09d}-{stop:09d}.parquet"
    return write_parquet(frame, part, settings.model_name, version)


def user_shards(settings: Settings, version: str, shard_users: int) -> list[tuple[int, int]]:
    """``(start, stop)`` user ranges of at most ``shard_users`` users covering every user.

    Args:
        settings: project settings.
        version: the model version.
        shard_users: users per shard.
    """
    n_users = len(_model(settings, version).users)
    return [(start, min(start + shard_users, n_users))
            for start in range(0, n_users, shard_users)]


def combine_parts(parts: Sequence[str | Path], path: str | Path) -> BatchResult:
    """Concatenate shard files (in user order) into one Parquet file, atomically.

    Args:
        parts: files from ``recommend_shard``, in user order.
        path: the combined file.
    """
    frame = pl.concat([pl.read_parquet(p) for p in parts]) if parts else pl.DataFrame(
        schema=dict.fromkeys(COLUMNS, pl.String))
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(tmp)
    os.replace(tmp, target)
    names = frame.select("model_name", "model_version").unique().rows()
    name, version = names[0] if names else ("", "")
    return BatchResult(parquet=target, model_name=name, model_version=version, rows=frame.height,
                       users=frame["user_id"].n_unique())
