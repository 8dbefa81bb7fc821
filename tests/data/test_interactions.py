from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from recsys_core.data import schema as S
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary


def test_vocabulary_maps_both_ways_and_unknown_is_minus_one() -> None:
    vocab = Vocabulary(["b", "a", 3])
    assert list(vocab.index(["a", "3", "zz"])) == [1, 2, -1]
    assert list(vocab.id([0, 2])) == ["b", "3"]
    assert "a" in vocab and "zz" not in vocab
    assert pickle.loads(pickle.dumps(vocab)) == vocab
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "a"])


def test_short_and_long_id_lists_map_alike() -> None:
    from recsys_core.data.vocab import SHORT

    vocab = Vocabulary([f"i{n}" for n in range(1000)] + ["7", "42"])
    asked = ["i5", "7", 42, np.int64(7), "nope", "i999"]
    expected = [5, 1000, 1001, 1000, -1, 999]
    assert vocab.index(asked).tolist() == expected  # the dict path
    long = asked * (SHORT // len(asked) + 1)
    assert len(long) > SHORT
    assert vocab.index(long).tolist() == expected * (SHORT // len(asked) + 1)  # vectorised
    assert vocab.index(np.array(["i5", "x"])).dtype == np.int64


def _frame(rows: list[tuple[str, str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {S.USER_ID: [r[0] for r in rows], S.ITEM_ID: [r[1] for r in rows],
         S.TS: [datetime.fromtimestamp(r[2], UTC) for r in rows], S.WEIGHT: [r[3] for r in rows]})


def test_from_frame_sums_duplicates_keeps_latest_time_and_orders_sequences() -> None:
    users, items = Vocabulary(["u1", "u2"]), Vocabulary(["a", "b", "c"])
    frame = _frame([("u1", "b", 30, 1.0), ("u1", "a", 10, 1.0), ("u1", "b", 5, 2.0),
                    ("u2", "c", 7, 1.0)])
    data = InteractionData.from_frame(frame, users, items)
    assert data.matrix.toarray().tolist() == [[1, 3, 0], [0, 0, 1]]
    assert data.times.toarray()[0].tolist() == [10, 30, 0]
    assert list(data.sequence(0)) == [0, 1]  # a at t=10, then b (latest t=30)
    assert data.matrix.shape == (2, 3)


def test_from_frame_rejects_ids_outside_the_vocabularies() -> None:
    frame = _frame([("u1", "zz", 1, 1.0)])
    with pytest.raises(ValueError, match="outside the vocabularies"):
        InteractionData.from_frame(frame, Vocabulary(["u1"]), Vocabulary(["a"]))


def test_embeddings_must_align_with_items() -> None:
    frame = _frame([("u1", "a", 1, 1.0)])
    with pytest.raises(ValueError, match="one row per item"):
        InteractionData.from_frame(frame, Vocabulary(["u1"]), Vocabulary(["a", "b"]),
                                   item_embeddings=np.zeros((3, 4), dtype=np.float32))
