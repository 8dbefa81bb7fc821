from __future__ import annotations

import polars as pl

from recsys_core.data.keys import DUPLICATE, SUPERSEDED, losing_rows


def test_the_last_row_of_a_key_wins_copies_are_duplicates_others_superseded() -> None:
    frame = pl.DataFrame({
        "id": ["a", "b", "a", "c", "a", "b", None, None],
        "tags": [["x"], None, ["y"], [], ["x"], None, ["z"], ["z"]],
        "score": [1.0, None, 1.0, 2.0, 1.0, None, 3.0, 4.0],
    })
    reasons = losing_rows(frame, ["id"])
    assert reasons.name == "reason"
    # a: rows 0, 2, 4 -> 4 wins; 0 equals it (list and float), 2 differs in its list.
    # b: 1 equals 5 (nulls compare equal). Null keys form one key: 7 wins over 6.
    assert reasons.to_list() == [DUPLICATE, DUPLICATE, SUPERSEDED, None, None, None,
                                 SUPERSEDED, None]


def test_compound_keys_and_no_collisions() -> None:
    frame = pl.DataFrame({"u": ["1", "1", "2"], "i": ["p", "q", "p"], "r": [1, 2, 3]})
    assert losing_rows(frame, ["u", "i"]).null_count() == 3
    assert losing_rows(frame, ["u"]).to_list() == [SUPERSEDED, None, None]
    assert losing_rows(frame.clear(), ["u"]).to_list() == []
