"""ServedModel: known users from the precomputed lists, fresh events folded in, else online."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys_core.lifecycle.batch import precompute
from recsys_core.model.events import EventFeed, write_events
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.model.precomputed import TOP_K_DIR, TopK
from recsys_core.model.serving import ServedModel
from tests.model.test_hybrid import N_ITEMS, N_USERS, build_foldable

K = 6
SNAPSHOT = "snap0"


@pytest.fixture(scope="module")
def model() -> HybridRecommender:
    return build_foldable()


@pytest.fixture(scope="module")
def folder(model, tmp_path_factory) -> Path:
    """The model saved as a registered version's folder is: model, metadata, lists."""
    out = model.save(tmp_path_factory.mktemp("version") / "model", {"snapshot_id": SNAPSHOT})
    precompute(model, K).save(out / TOP_K_DIR)
    return out


def same(got, expected) -> None:
    assert [r.item_id for r in got] == [r.item_id for r in expected]
    assert [r.title for r in got] == [r.title for r in expected]
    assert [r.score for r in got] == pytest.approx([r.score for r in expected], rel=1e-6)
    assert [r.fallback for r in got] == [r.fallback for r in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.contributions.keys() == b.contributions.keys()
        assert list(a.contributions.values()) == pytest.approx(list(b.contributions.values()),
                                                               rel=1e-6, abs=1e-7)


def test_known_users_are_answered_from_the_lists_as_the_model_answers_online(
        model, folder) -> None:
    served = ServedModel.open(folder)
    assert served.top_k is not None and served.top_k.k == K and served.events is None
    for user in model.users.ids:
        for k in (1, 3, K):
            same(served.recommend(user, k), model.recommend(user, k))
    assert not served.loaded  # every answer came from the lists: the model never loaded


def test_what_the_lists_cannot_answer_is_scored_online(model, folder) -> None:
    served = ServedModel.open(folder)
    same(served.recommend("u1", K + 2), model.recommend("u1", K + 2))
    assert served.loaded
    same(served.recommend("stranger", 3), model.recommend("stranger", 3))
    assert all(r.fallback for r in served.recommend("stranger", 3))
    same(served.recommend("u1", 4, recent_items=["i2"]),
         model.recommend("u1", 4, recent_items=["i2"]))
    same(served.recommend(None, 4, recent_items=["i2", "i5"]),
         model.recommend(None, 4, recent_items=["i2", "i5"]))
    same(served.recommend("u1", 4, exclude_seen=False),
         model.recommend("u1", 4, exclude_seen=False))
    with pytest.raises(ValueError, match="k must be"):
        served.recommend("u1", 0)


def test_lists_round_trip_and_hold_fewer_items_for_users_with_few_unseen(model, tmp_path) -> None:
    lists = precompute(model, N_ITEMS + 3)  # more than the catalogue: every unseen item
    assert lists.k == N_ITEMS
    loaded = TopK.load(lists.save(tmp_path / "lists"))
    assert isinstance(loaded.items, np.memmap) and loaded.sources == ("x", "y")
    for row, user in enumerate(model.users.ids):
        unseen = N_ITEMS - model.seen[row].nnz
        got = loaded.recommend(loaded.row(user), N_ITEMS)
        assert len(got) == unseen
        same(got, model.recommend(user, N_ITEMS))
    assert loaded.row("nobody") == -1 and loaded.row("u1-and-a-much-longer-id") == -1
    assert loaded.row("") == -1 and loaded.row("zzz") == -1
    # int32 item + float32 score + a float32 contribution per source, per list entry
    assert loaded.bytes_per_user == (4 + 4 + 4 * 2) * N_ITEMS
    frame = loaded.frame()
    assert frame.height == sum(N_ITEMS - model.seen[r].nnz for r in range(N_USERS))
    first = frame.filter(pl.col("user_id") == "u2").sort("rank")
    assert first["item_id"].to_list() == [r.item_id for r in model.recommend("u2", N_ITEMS)]


def events(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    return pl.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                         "ts": [start + timedelta(minutes=r[2]) for r in rows],
                         "weight": [1.0] * len(rows)})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_feed_follows_appends_descending_from_its_snapshot_and_polls_on_time(tmp_path) -> None:
    clock = Clock()
    feed = EventFeed(tmp_path / "events", SNAPSHOT, interval_s=5.0, clock=clock)
    assert feed.recent("u1") == []  # no folder yet
    write_events(tmp_path / "events", SNAPSHOT, "s1", events([("u1", "i4", 2), ("u2", "i1", 1)]))
    assert feed.recent("u1") == []  # not looked again before the interval
    clock.now = 5.0
    assert feed.recent("u1") == ["i4"] and feed.recent("u2") == ["i1"]
    write_events(tmp_path / "events", "s1", "s2", events([("u1", "i7", 3), ("u1", "i6", 0)]))
    write_events(tmp_path / "events", "other", "s3", events([("u1", "i9", 9)]))  # another line
    (tmp_path / "events" / f".{SNAPSHOT}-half.parquet.tmp").write_bytes(b"partial")
    clock.now = 10.0
    assert feed.recent("u1") == ["i6", "i4", "i7"]  # oldest first across files
    assert feed.users() == 2
    assert not feed.poll()  # due again only after the interval


def test_a_user_with_fresh_events_is_folded_in_and_the_new_item_excluded(model, folder,
                                                                         tmp_path) -> None:
    served = ServedModel.open(folder, tmp_path / "events", poll_s=0.01)
    before = served.recommend("u3", 5)
    assert not served.loaded
    watched = before[0].item_id  # the user just touched their best recommendation
    write_events(tmp_path / "events", SNAPSHOT, "s1", events([("u3", watched, 1),
                                                              ("newcomer", "i2", 1)]))
    assert served.events is not None and served.events.refresh()
    after = served.recommend("u3", 5)
    assert watched not in [r.item_id for r in after]
    same(after, model.recommend("u3", 5, recent_items=[watched]))
    assert [r.item_id for r in after] != [r.item_id for r in before]
    # a user unknown at training gets personal recommendations from their events alone
    same(served.recommend("newcomer", 4), model.recommend(None, 4, recent_items=["i2"]))
    assert not any(r.fallback for r in served.recommend("newcomer", 4))
    same(served.recommend("u4", 5), model.recommend("u4", 5))  # no events: the list
