"""Batch recommendation: top-k for every known user, to Parquet and a DuckDB table.

Users are scored in blocks through ``HybridRecommender.score_users`` (one pass over the
sources per block), so memory stays at ``batch_size`` x items scores.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from recsys_core.config import Settings
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.registry import alias_version, client, load_recommender

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
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_users, n_items = len(model.users), len(model.items)
    k = min(k, n_items)
    frames = []
    for start in range(0, n_users, batch_size):
        rows = np.arange(start, min(start + batch_size, n_users))
        scores = model.score_users(rows)
        ranked = np.where(np.isfinite(scores), scores, -np.inf)
        top = np.argpartition(-ranked, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(ranked, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        values = np.take_along_axis(ranked, top, axis=1)
        keep = np.isfinite(values)
        user_pos, rank = np.nonzero(keep)
        items = top[keep]
        frames.append(pl.DataFrame({
            "user_id": model.users.ids[rows[user_pos]].astype(str),
            "rank": (rank + 1).astype(np.int32),
            "item_id": model.items.ids[items].astype(str),
            "title": model.titles[items].astype(str),
            "score": values[keep].astype(np.float64),
        }))
    out = pl.concat(frames) if frames else pl.DataFrame(
        schema={"user_id": pl.String, "rank": pl.Int32, "item_id": pl.String,
                "title": pl.String, "score": pl.Float64})
    log.info("top-%d for %d users: %d rows", k, n_users, out.height)
    return out


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


@dataclass(frozen=True)
class BatchResult:
    """Where a batch run wrote its recommendations.

    Args:
        parquet: the Parquet file.
        model_name: registered model name.
        model_version: the version that recommended.
        rows: recommendation rows written.
        users: users covered.
    """

    parquet: Path
    model_name: str
    model_version: str
    rows: int
    users: int


def recommend_all(settings: Settings, alias: str = "champion", k: int = 10) -> BatchResult:
    """Top-``k`` for every user of a registered version, written to Parquet.

    The file is ``RECSYS_HOME/recommendations/NAME-vVERSION-topK.parquet``.

    Args:
        settings: project settings (model name, tracking store, state folder).
        alias: ``champion``, ``challenger`` or a version number.
        k: items per user.

    Raises:
        LookupError: the alias points at no version.
    """
    name = settings.model_name
    if str(alias).isdigit():
        version = str(alias)
    else:
        found = alias_version(client(settings), name, alias)
        if found is None:
            raise LookupError(f"model {name!r} has no {alias!r} version: run `recsys train` "
                              "first")
        version = str(found.version)
    model = load_recommender(settings, version)
    frame = top_k_all(model, k)
    path = write_parquet(frame, settings.home / "recommendations" / f"{name}-v{version}-top{k}"
                         ".parquet", name, version)
    return BatchResult(path, name, version, frame.height, frame["user_id"].n_unique())
