from __future__ import annotations

import polars as pl
import pytest

from recsys_core.data import schema as S
from recsys_core.evaluation import splits
from recsys_core.evaluation.splits import DRAWN_PROTOCOLS, Split


def pairs(frame: pl.DataFrame) -> set[tuple[str, str]]:
    return set(frame.select(S.USER_ID, S.ITEM_ID).iter_rows())


def assert_partition(whole: pl.DataFrame, part: Split) -> None:
    """train and test are disjoint in (user, item) and together are the deduplicated input."""
    assert not pairs(part.train) & pairs(part.test)
    assert pairs(part.train) | pairs(part.test) == pairs(whole)
    assert part.train.height + part.test.height == splits.deduplicate(whole).height
    assert part.train.columns == whole.columns == part.test.columns


def test_deduplicate_keeps_latest_row_and_sums_weights(frame_factory) -> None:
    frame = frame_factory([("u1", "a", 3, 2.0), ("u1", "a", 1, 1.0), ("u1", "b", 2, 1.0),
                           ("u1", "a", 5, 0.5)])
    out = splits.deduplicate(frame)
    assert out.height == 2
    a = out.filter(pl.col(S.ITEM_ID) == "a").row(0, named=True)
    assert a[S.WEIGHT] == 3.5
    assert a[S.EVENT] == "e5"  # event of the latest (day 5) interaction
    assert a[S.TS] == frame[S.TS].max()


@pytest.mark.parametrize("protocol", DRAWN_PROTOCOLS)
def test_every_protocol_partitions_the_pairs(random_frame, protocol) -> None:
    part = splits.split(random_frame, protocol, seed=3)
    assert_partition(random_frame, part)
    assert part.train.height > 0 and part.test.height > 0


@pytest.mark.parametrize("protocol", DRAWN_PROTOCOLS)
def test_same_seed_same_split_in_any_row_order(random_frame, protocol) -> None:
    shuffled = random_frame.sample(fraction=1.0, shuffle=True, seed=11)
    a = splits.split(random_frame, protocol, seed=5)
    b = splits.split(shuffled, protocol, seed=5)
    assert pairs(a.test) == pairs(b.test)
    assert a.train.equals(b.train) and a.test.equals(b.test)


def test_different_seed_different_stratified_split(random_frame) -> None:
    a = splits.stratified(random_frame, seed=1)
    b = splits.stratified(random_frame, seed=2)
    assert pairs(a.test) != pairs(b.test)


def test_stratified_per_user_counts(random_frame) -> None:
    part = splits.stratified(random_frame, 0.25, seed=0)
    counts = splits.deduplicate(random_frame).group_by(S.USER_ID).len()
    train_n = dict(part.train.group_by(S.USER_ID).len().iter_rows())
    test_n = dict(part.test.group_by(S.USER_ID).len().iter_rows())
    for user, n in counts.iter_rows():
        if n < 2:  # too few: everything stays in train
            assert user not in test_n and train_n[user] == n
            continue
        expected = min(max(int(n * 0.25 + 0.5), 1), n - 1)
        assert test_n[user] == expected
        assert train_n[user] == n - expected >= 1


def test_stratified_two_items_split_one_each(frame_factory) -> None:
    part = splits.stratified(frame_factory([("u", "a", 0), ("u", "b", 1), ("v", "a", 0)]),
                             seed=0)
    assert part.test.height == 1 and part.test[S.USER_ID].to_list() == ["u"]
    assert sorted(part.train[S.USER_ID].to_list()) == ["u", "v"]


def test_temporal_cut_is_respected(random_frame) -> None:
    part = splits.temporal(random_frame, 0.25)
    assert part.train[S.TS].max() < part.test[S.TS].min()
    n = splits.deduplicate(random_frame).height
    assert part.test.height >= round(n * 0.25)


def test_temporal_repeated_pair_lands_once_on_its_latest_side(frame_factory) -> None:
    frame = frame_factory([("u", "a", 0), ("u", "b", 1), ("u", "c", 2), ("u", "a", 9)])
    part = splits.temporal(frame, 0.25)
    assert pairs(part.test) == {("u", "a")}
    assert ("u", "a") not in pairs(part.train)


def test_leave_last_holds_out_each_users_latest(random_frame) -> None:
    data = splits.deduplicate(random_frame)
    part = splits.leave_last(random_frame)
    last = data.group_by(S.USER_ID).agg(pl.col(S.TS).max().alias("last"), pl.len().alias("n"))
    test_users = part.test[S.USER_ID].to_list()
    assert len(test_users) == len(set(test_users))  # one per user
    for user, last_ts, n in last.iter_rows():
        held = part.test.filter(pl.col(S.USER_ID) == user)
        if n < 2:
            assert held.height == 0
        else:
            assert held[S.TS].item() == last_ts
            assert part.train.filter(pl.col(S.USER_ID) == user)[S.TS].max() <= last_ts


def test_leave_last_breaks_ts_ties_by_item(frame_factory) -> None:
    part = splits.leave_last(frame_factory([("u", "b", 1), ("u", "a", 1), ("u", "c", 0)]))
    assert pairs(part.test) == {("u", "b")}


def test_cold_items_are_absent_from_train(random_frame) -> None:
    part = splits.cold_items(random_frame, 0.2, seed=4)
    test_items = set(part.test[S.ITEM_ID])
    assert not test_items & set(part.train[S.ITEM_ID])
    n_items = random_frame[S.ITEM_ID].n_unique()
    assert len(test_items) == round(n_items * 0.2)
    # every interaction of a held-out item is in test
    held = splits.deduplicate(random_frame).filter(pl.col(S.ITEM_ID).is_in(list(test_items)))
    assert held.height == part.test.height


@pytest.mark.parametrize("protocol", DRAWN_PROTOCOLS)
def test_validation_is_carved_from_train_only(random_frame, protocol) -> None:
    outer = splits.split(random_frame, protocol, seed=9)
    inner = splits.validation_split(outer.train, protocol, seed=9)
    assert_partition(outer.train, inner)
    assert not pairs(inner.test) & pairs(outer.test)
    assert pairs(inner.test) <= pairs(outer.train)
    assert inner.test.height > 0


def test_leave_last_validation_is_the_one_before_test(random_frame) -> None:
    data = splits.deduplicate(random_frame).sort([S.USER_ID, S.TS, S.ITEM_ID])
    outer = splits.leave_last(random_frame)
    inner = splits.validation_split(outer.train, "leave_last", seed=0)
    for user, item, ts in inner.test.select(S.USER_ID, S.ITEM_ID, S.TS).iter_rows():
        history = data.filter(pl.col(S.USER_ID) == user)
        if history.height >= 3:
            assert history[S.ITEM_ID][-2] == item  # second to last
            assert outer.test.filter(pl.col(S.USER_ID) == user)[S.TS].item() >= ts


def test_cold_items_validation_holds_out_train_items(random_frame) -> None:
    outer = splits.cold_items(random_frame, seed=1)
    inner = splits.validation_split(outer.train, "cold_items", seed=1)
    val_items = set(inner.test[S.ITEM_ID])
    assert not val_items & set(inner.train[S.ITEM_ID])
    assert not val_items & set(outer.test[S.ITEM_ID])


def test_temporal_validation_cut_is_before_test(random_frame) -> None:
    outer = splits.temporal(random_frame)
    inner = splits.validation_split(outer.train, "temporal")
    assert inner.train[S.TS].max() < inner.test[S.TS].min()
    assert inner.test[S.TS].max() < outer.test[S.TS].min()


def test_unknown_protocol_is_a_one_line_value_error(random_frame) -> None:
    with pytest.raises(ValueError, match="unknown protocol 'random'") as info:
        splits.split(random_frame, "random")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        splits.validation_split(random_frame, "nope")


@pytest.mark.parametrize("protocol", ["temporal", "leave_last"])
def test_time_protocols_need_ts(random_frame, protocol) -> None:
    with pytest.raises(ValueError, match="ts"):
        splits.split(random_frame.drop(S.TS), protocol)


def test_bad_fraction_raises(random_frame) -> None:
    with pytest.raises(ValueError):
        splits.stratified(random_frame, 1.5)


def test_empty_frame(frame_factory, random_frame) -> None:
    empty = random_frame.clear()
    for protocol in DRAWN_PROTOCOLS:
        part = splits.split(empty, protocol)
        assert part.train.height == 0 and part.test.height == 0


def test_leave_last_carves_roll_back_one_interaction_each(frame_factory) -> None:
    frame = frame_factory([("u1", "a", 1, 1.0), ("u1", "b", 2, 1.0), ("u1", "c", 3, 1.0),
                           ("u1", "d", 4, 1.0), ("u2", "x", 1, 1.0), ("u2", "y", 2, 1.0)])
    first, second = splits.validation_carves(frame, "leave_last", carves=2)
    assert pairs(first.test) == {("u1", "d"), ("u2", "y")}
    assert pairs(second.test) == {("u1", "c")}  # u2 has one item left: it stays in fit
    assert pairs(second.train) == {("u1", "a"), ("u1", "b"), ("u2", "x")}


@pytest.mark.parametrize("protocol", ["stratified", "cold_items"])
def test_random_carves_draw_with_the_next_seeds(random_frame, protocol) -> None:
    carves = splits.validation_carves(random_frame, protocol, seed=3, carves=3)
    for offset, carve in enumerate(carves):
        expected = splits.validation_split(random_frame, protocol, seed=3 + offset)
        assert pairs(carve.test) == pairs(expected.test)
        assert_partition(random_frame, carve)
    assert len({frozenset(pairs(c.test)) for c in carves}) == 3


def test_carves_need_at_least_one() -> None:
    with pytest.raises(ValueError, match="carves"):
        splits.validation_carves(pl.DataFrame(), "stratified", carves=0)


# --- given: the published split the rows carry -----------------------------------------

GIVEN = [("u1", "a", 1, "train"), ("u1", "b", 2, "train"), ("u1", "a", 3, "train"),
         ("u1", "c", 4, "valid"), ("u1", "d", 5, "test"),
         ("u2", "a", 1, "train"), ("u2", "b", 2, "test"), ("u2", "a", 6, "test"),
         ("u3", "e", 7, "test")]


@pytest.fixture
def labelled(frame_factory):
    """Canonical interactions from (user, item, day, split label) tuples."""
    def build(rows: list[tuple[str, str, int, str | None]]) -> pl.DataFrame:
        frame = frame_factory([(u, i, d) for u, i, d, _ in rows])
        return frame.with_columns(pl.Series(S.SPLIT, [r[3] for r in rows], dtype=pl.String))

    return build


def rows_of(frame: pl.DataFrame) -> list[tuple]:
    return frame.select(S.USER_ID, S.ITEM_ID, S.SPLIT).rows()


def test_given_keeps_the_given_rows_and_rejects_pairs_already_seen(labelled) -> None:
    part = splits.split(labelled(GIVEN), "given", seed=1)
    # repeated train rows stay rows: nothing is deduplicated or drawn
    assert rows_of(part.train) == [("u1", "a", "train"), ("u1", "b", "train"),
                                   ("u1", "a", "train"), ("u1", "c", "valid"),
                                   ("u2", "a", "train")]
    assert rows_of(part.test) == [("u1", "d", "test"), ("u2", "b", "test"),
                                  ("u3", "e", "test")]  # u3 and item e: cold, kept
    assert part.rejected is not None
    assert part.rejected.select(S.USER_ID, S.ITEM_ID, S.SPLIT, "reason").rows() == [
        ("u2", "a", "test", "split: (user_id, item_id) also in train")]
    assert part.train.columns == part.test.columns == labelled(GIVEN).columns
    inner = splits.validation_split(part.train, "given")
    assert rows_of(inner.test) == [("u1", "c", "valid")]  # the given valid rows, as they are
    assert inner.train.height == 4 and set(inner.train[S.SPLIT]) == {"train"}


def test_given_rejects_a_test_pair_of_the_valid_part(labelled) -> None:
    rows = [("u1", "a", 1, "train"), ("u1", "b", 2, "valid"), ("u1", "b", 3, "test"),
            ("u1", "c", 4, "test")]
    part = splits.given(labelled(rows))
    assert part.rejected is not None
    assert part.rejected["reason"].to_list() == ["split: (user_id, item_id) also in valid"]
    assert rows_of(part.test) == [("u1", "c", "test")]


def test_given_without_valid_rows_carves_each_users_latest_training_pair(labelled) -> None:
    part = splits.given(labelled([r for r in GIVEN if r[3] != "valid"]))
    inner = splits.validation_split(part.train, "given", seed=3)
    # u1's latest training pair is a (days 1 and 3); u2 has one pair and keeps it
    assert inner.test.select(S.USER_ID, S.ITEM_ID).rows() == [("u1", "a")]
    assert inner.train.select(S.USER_ID, S.ITEM_ID).rows() == [("u1", "b"), ("u2", "a")]


@pytest.mark.parametrize(("labels", "message"), [
    ([None] * 4, "protocol 'given' needs the published split in the interactions' 'split' "
                 "column"),
    (["train", "test", None, "test"], "1 of 4 interactions have no 'split' label"),
    (["train", "test", "tset", "test"], r"unknown 'split' labels \['tset'\]"),
    (["train", "valid", "valid", "train"], "no interaction has 'split' = 'test'"),
])
def test_given_errors_are_one_line(labelled, labels, message) -> None:
    rows = [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "c", 4)]
    frame = labelled([(*row, label) for row, label in zip(rows, labels, strict=True)])
    with pytest.raises(ValueError, match=message) as info:
        splits.split(frame, "given")
    assert "\n" not in str(info.value)


def test_given_carves_roll_back_from_the_given_valid_rows(labelled) -> None:
    part = splits.given(labelled(GIVEN))
    first, second = splits.validation_carves(part.train, "given", carves=2)
    assert rows_of(first.test) == [("u1", "c", "valid")]
    # then each user's latest pair of the train rows: u1's a (days 1 and 3); u2 keeps its one
    assert second.test.select(S.USER_ID, S.ITEM_ID).rows() == [("u1", "a")]
    assert second.train.select(S.USER_ID, S.ITEM_ID).rows() == [("u1", "b"), ("u2", "a")]
