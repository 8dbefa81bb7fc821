from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

from recsys_core.lifecycle.batch import COLUMNS, TABLE, load_table, top_k_all, write_parquet
from tests.model.test_hybrid import N_ITEMS, N_USERS, build_foldable


@pytest.fixture(scope="module")
def model():
    return build_foldable()


@pytest.mark.parametrize("batch_size", [1, 3, 512])
def test_top_k_all_matches_recommend_for_every_user(model, batch_size: int) -> None:
    frame = top_k_all(model, k=4, batch_size=batch_size)
    assert frame.columns == ["user_id", "rank", "item_id", "title", "score"]
    assert frame.height == 4 * N_USERS
    for user in model.users.ids:
        rows = frame.filter(pl.col("user_id") == user).sort("rank")
        recs = model.recommend(user, 4)
        assert rows["item_id"].to_list() == [r.item_id for r in recs]
        assert rows["rank"].to_list() == [1, 2, 3, 4]
        assert rows["score"].to_list() == pytest.approx([r.score for r in recs], rel=1e-5)
        assert rows["title"].to_list() == [r.title for r in recs]


def test_users_with_few_unseen_items_get_fewer_rows(model) -> None:
    frame = top_k_all(model, k=N_ITEMS + 5)
    per_user = frame.group_by("user_id").len().sort("user_id")
    expected = {u: N_ITEMS - model.seen[i].nnz for i, u in enumerate(model.users.ids)}
    assert dict(per_user.iter_rows()) == expected
    with pytest.raises(ValueError, match="k must be"):
        top_k_all(model, k=0)


def test_parquet_and_table_replace_a_versions_rows(model, tmp_path) -> None:
    frame = top_k_all(model, k=3)
    path = write_parquet(frame, tmp_path / "out" / "recs.parquet", "m", "7")
    stored = pl.read_parquet(path)
    assert stored.columns == list(COLUMNS) and stored.height == frame.height
    assert set(stored["model_version"]) == {"7"}
    warehouse = tmp_path / "w.duckdb"
    assert load_table(path, warehouse) == frame.height
    assert load_table(path, warehouse) == frame.height  # again: replaced, not appended
    other = write_parquet(frame.head(5), tmp_path / "other.parquet", "m", "8")
    load_table(other, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        counts = dict(con.execute(f"SELECT model_version, COUNT(*) FROM {TABLE} "
                                  "GROUP BY 1").fetchall())
        top = con.execute(f"SELECT item_id FROM {TABLE} WHERE model_version = '7' AND "
                          "user_id = 'u0' ORDER BY rank").fetchall()
    assert counts == {"7": frame.height, "8": 5}
    assert [t[0] for t in top] == [r.item_id for r in model.recommend("u0", 3)]
    assert not np.isnan(stored["score"].to_numpy()).any()


def test_user_shards_concatenate_to_the_whole(model) -> None:
    from recsys_core.lifecycle.batch import top_k_users

    whole = top_k_all(model, k=3)
    parts = [top_k_users(model, start, start + 2, k=3) for start in range(0, N_USERS, 2)]
    assert pl.concat(parts).equals(whole)
    assert top_k_users(model, N_USERS, N_USERS + 5, k=3).height == 0
