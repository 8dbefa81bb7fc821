"""Embedding cache in DuckDB, keyed by (encoder ID, document hash).

Each call opens the database file, does one statement's work and closes it again, so other
code (the warehouse) can use the same file between calls; each ``put`` is its own committed
transaction, so an interrupted job keeps every batch it finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

DEFAULT_TABLE = "embedding_cache"
_LOCK_WAIT_S = 60.0


class EmbeddingCache:
    """Float32 vectors stored per (encoder ID, document hash) in a DuckDB file.

    Args:
        path: the DuckDB file (created with its folder when missing), e.g.
            ``Settings().warehouse_path``.
        table: the cache table's name.
        lock_wait_s: how long to retry when another process holds the file's write lock.
    """

    def __init__(self, path: str | Path, table: str = DEFAULT_TABLE,
                 lock_wait_s: float = _LOCK_WAIT_S) -> None:
        if not table.isidentifier():
            raise ValueError(f"table name {table!r} is not a plain identifier")
        self.path = Path(path).expanduser().resolve()
        self.table = table
        self.lock_wait_s = lock_wait_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " encoder_id VARCHAR NOT NULL,"
                " doc_hash VARCHAR NOT NULL,"
                " dim INTEGER NOT NULL,"
                " vector BLOB NOT NULL,"
                " created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,"
                " PRIMARY KEY (encoder_id, doc_hash))"
            )

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r}, table={self.table!r})"

    def get(self, encoder_id: str, hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Look up vectors.

        Args:
            encoder_id: the encoder's ``encoder_id``.
            hashes: document hashes (see ``document_hash``).

        Returns:
            ``(found, vectors)``: a bool mask aligned with ``hashes`` and float32
            ``(found.sum(), dim)`` vectors for the found ones, in ``hashes`` order.
        """
        found = np.zeros(len(hashes), dtype=bool)
        if not len(hashes):
            return found, np.zeros((0, 0), dtype=np.float32)
        wanted = pa.table({"doc_hash": pa.array(list(hashes), pa.string())})
        with self._connect() as con:
            con.register("wanted_hashes", wanted)
            result = con.sql(
                f"SELECT c.doc_hash, c.dim, c.vector FROM {self.table} c "
                "JOIN (SELECT DISTINCT doc_hash FROM wanted_hashes) w USING (doc_hash) "
                "WHERE c.encoder_id = $encoder_id",
                params={"encoder_id": encoder_id},
            ).to_arrow_table()
        if result.num_rows == 0:
            return found, np.zeros((0, 0), dtype=np.float32)
        dims = set(result.column("dim").to_pylist())
        if len(dims) != 1:
            raise ValueError(f"cache holds vectors of several sizes {dims} for {encoder_id}")
        dim = dims.pop()
        blobs = result.column("vector").to_pylist()
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)
        row_of = {h: r for r, h in enumerate(result.column("doc_hash").to_pylist())}
        rows = np.fromiter((row_of.get(h, -1) for h in hashes), dtype=np.int64,
                           count=len(hashes))
        found = rows >= 0
        return found, matrix[rows[found]].copy()

    def put(self, encoder_id: str, hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Store vectors (one committed transaction); existing keys are left as they are.

        Args:
            encoder_id: the encoder's ``encoder_id``.
            hashes: document hashes aligned with ``vectors``.
            vectors: float32 (len(hashes), dim).

        Returns:
            Rows actually inserted.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(hashes):
            raise ValueError("vectors must be (len(hashes), dim)")
        if not len(hashes):
            return 0
        batch = pa.table({
            "encoder_id": pa.array([encoder_id] * len(hashes), pa.string()),
            "doc_hash": pa.array(list(hashes), pa.string()),
            "dim": pa.array(np.full(len(hashes), vectors.shape[1], dtype=np.int32)),
            "vector": pa.array([row.tobytes() for row in vectors], pa.binary()),
        })
        with self._connect() as con:
            con.register("new_vectors", batch)
            before = self._count(con, encoder_id)
            con.execute(
                f"INSERT OR IGNORE INTO {self.table} (encoder_id, doc_hash, dim, vector) "
                "SELECT DISTINCT ON (doc_hash) encoder_id, doc_hash, dim, vector "
                "FROM new_vectors"
            )
            return self._count(con, encoder_id) - before

    def count(self, encoder_id: str | None = None) -> int:
        """Vectors stored (for one encoder when ``encoder_id`` is given).

        Args:
            encoder_id: restrict to this encoder.
        """
        with self._connect() as con:
            return self._count(con, encoder_id)

    def clear(self, encoder_id: str | None = None) -> None:
        """Delete vectors (one encoder's, or all).

        Args:
            encoder_id: restrict to this encoder.
        """
        with self._connect() as con:
            if encoder_id is None:
                con.execute(f"DELETE FROM {self.table}")
            else:
                con.execute(f"DELETE FROM {self.table} WHERE encoder_id = ?", [encoder_id])

    def retain(self, hashes: Sequence[str]) -> int:
        """Delete every vector (of any encoder) whose document hash is not among ``hashes``.

        Args:
            hashes: the document hashes to keep.

        Returns:
            Rows deleted.
        """
        keep = pa.table({"doc_hash": pa.array(sorted(set(hashes)), pa.string())})
        with self._connect() as con:
            con.register("kept_hashes", keep)
            before = self._count(con, None)
            con.execute(f"DELETE FROM {self.table} WHERE doc_hash NOT IN "
                        "(SELECT doc_hash FROM kept_hashes)")
            return before - self._count(con, None)

    def _count(self, con: duckdb.DuckDBPyConnection, encoder_id: str | None) -> int:
        if encoder_id is None:
            row = con.execute(f"SELECT count(*) FROM {self.table}").fetchone()
        else:
            row = con.execute(f"SELECT count(*) FROM {self.table} WHERE encoder_id = ?",
                              [encoder_id]).fetchone()
        return 0 if row is None else int(row[0])

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_wait_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as error:  # another process holds the write lock
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                log.debug("waiting for the lock on %s", self.path)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield con
        finally:
            con.close()
