from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from recsys_core.embed import EmbeddingCache


def test_put_get_round_trip_in_query_order(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "w" / "warehouse.duckdb")
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert cache.put("enc", ["a", "b", "c"], vectors) == 3
    found, got = cache.get("enc", ["c", "x", "a", "c"])
    assert found.tolist() == [True, False, True, True]
    assert np.array_equal(got, vectors[[2, 0, 2]])
    assert cache.get("other", ["a"])[0].tolist() == [False]  # keyed by encoder too
    assert cache.put("enc", ["a", "d"], np.ones((2, 4), dtype=np.float32)) == 1
    assert np.array_equal(cache.get("enc", ["a"])[1][0], vectors[0])  # first write kept
    assert cache.count("enc") == 4 and cache.count() == 4
    with pytest.raises(ValueError):
        cache.put("enc", ["z"], np.ones((2, 4), dtype=np.float32))


def test_persists_and_leaves_the_file_free_between_calls(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    cache = EmbeddingCache(path)
    cache.put("enc", ["a"], np.ones((1, 2), dtype=np.float32))
    with duckdb.connect(str(path)) as con:  # other code can use the same file
        con.execute("CREATE TABLE other AS SELECT 42 AS x")
        assert con.execute("SELECT count(*) FROM embedding_cache").fetchone()[0] == 1
    again = EmbeddingCache(path)
    assert again.get("enc", ["a"])[0].all()
    again.clear("enc")
    assert again.count() == 0
    assert cache.get("enc", []) [0].shape == (0,)


def test_works_while_other_code_holds_the_file_open(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as warehouse:  # e.g. the warehouse module's connection
        warehouse.execute("CREATE TABLE items AS SELECT 1 AS item_id")
        cache = EmbeddingCache(path)
        cache.put("enc", ["a"], np.ones((1, 3), dtype=np.float32))
        assert cache.get("enc", ["a"])[0].all()
        assert warehouse.execute("SELECT count(*) FROM embedding_cache").fetchone()[0] == 1


def test_waits_for_another_process_holding_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    cache = EmbeddingCache(path, lock_wait_s=20)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time\n"
         f"con = duckdb.connect({str(path)!r})\n"
         "print('locked', flush=True)\n"
         "time.sleep(1.0)\n"
         "con.close()\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException):
            EmbeddingCache(path, lock_wait_s=0).count()
        assert cache.put("enc", ["a"], np.ones((1, 2), dtype=np.float32)) == 1  # waits
    finally:
        holder.wait(timeout=30)
    assert cache.count() == 1


def test_retain_keeps_only_the_named_documents_of_every_encoder(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.duckdb")
    vectors = np.ones((3, 4), dtype=np.float32)
    cache.put("enc-a", ["h1", "h2", "h3"], vectors)
    cache.put("enc-b", ["h1", "h4"], vectors[:2])
    assert cache.retain(["h1", "h3"]) == 2  # h2 of one encoder, h4 of the other
    assert cache.count("enc-a") == 2 and cache.count("enc-b") == 1
    found, _ = cache.get("enc-a", ["h1", "h2", "h3"])
    assert found.tolist() == [True, False, True]
    assert cache.retain(["h1", "h3"]) == 0
