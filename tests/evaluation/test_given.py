"""The given protocol end to end: a published split in a generic file, from the loader through
validation, the warehouse and the run's parts to metrics at two cut-offs, computed by hand."""

from __future__ import annotations

from collections.abc import Iterable
from math import log2

import numpy as np
import pytest

from data_checks.runner import validate_dataset
from recsys_core.data import schema as S
from recsys_core.data.loaders import ROW, load_dataset
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.runstore import RunStore
from recsys_core.warehouse.features import build_features
from recsys_core.warehouse.store import Warehouse

# (user, item, split); the row number is the CSV record. Items i00..i24; u5 only makes the
# test items but i24 warm. The fixed scorer ranks items in id order, so the ranks are known.
ROWS = [
    ("u1", "i00", "train"), ("u1", "i01", "train"), ("u1", "i02", "train"),  # 1-3
    ("u1", "i03", "train"), ("u2", "i02", "train"), ("u4", "i00", "train"),  # 4-6
    ("u5", "i05", "train"), ("u5", "i06", "train"), ("u5", "i07", "train"),  # 7-9
    ("u5", "i23", "train"), ("u2", "i03", "Valid"),                          # 10-11
    ("u1", "i06", "test"), ("u1", "i23", " TEST "), ("u2", "i05", "test"),   # 12-14
    ("u2", "i02", "test"),   # 15: u2 has i02 in train -> rejected by the split
    ("u3", "i07", "test"),   # 16: u3 never appears in train -> a cold user, kept
    ("u4", "i24", "test"),   # 17: i24 never appears in train -> a cold item, kept
    ("u4", "i01", "tset"),   # 18: unknown label -> quarantined
    ("u3", "i08", ""),       # 19: empty label -> quarantined
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunStore, dict]:
    directory = tmp_path_factory.mktemp("given")
    (directory / "interactions.csv").write_text(
        "user_id,item_id,timestamp,split\n"
        + "".join(f"{u},{i},{t},{s}\n" for t, (u, i, s) in enumerate(ROWS, start=1)))
    (directory / "items.csv").write_text(
        "item_id,title\n" + "".join(f"i{j:02d},Item {j}\n" for j in range(25)))
    result = validate_dataset(load_dataset(directory), threshold=0.2)
    result.raise_if_failed()
    warehouse = Warehouse(directory / "wh.duckdb")
    features = build_features(warehouse, warehouse.load(result.dataset, result.quarantine))
    store = RunStore.prepare(features, "given", 42, directory / "runs")
    return store, result.quarantine


def records(frame) -> list[tuple[str, str]]:
    """The frame's (user, item) rows, sorted (the warehouse keeps its own row order)."""
    return sorted(frame.select(S.USER_ID, S.ITEM_ID).rows())


def given_rows(*labels: str, rows: Iterable[int] = range(1, len(ROWS) + 1)
               ) -> list[tuple[str, str]]:
    """The (user, item) of the CSV records ``rows`` labelled one of ``labels``, sorted."""
    return sorted(ROWS[r - 1][:2] for r in rows if ROWS[r - 1][2].strip().lower() in labels)


def test_bad_split_labels_are_quarantined_with_their_reason(run) -> None:
    _, quarantine = run
    bad = quarantine["interactions"]
    assert dict(zip(bad[ROW], bad["reason"], strict=True)) == {
        18: "expect_column_values_to_be_in_set(split)",
        19: "expect_column_values_to_not_be_null(split)"}


def test_parts_are_exactly_the_given_rows(run) -> None:
    store, _ = run
    assert records(store.frame("fit")) == given_rows("train")
    assert records(store.frame("valid")) == given_rows("valid")
    assert records(store.frame("train")) == given_rows("train", "valid")
    assert records(store.frame("test")) == given_rows("test", rows=(12, 13, 14, 16, 17)) == [
        ("u1", "i06"), ("u1", "i23"), ("u2", "i05"), ("u3", "i07"), ("u4", "i24")]
    rejected = store.rejected()
    assert rejected is not None
    assert rejected.select(S.USER_ID, S.ITEM_ID, "reason").rows() == [
        ("u2", "i02", "split: (user_id, item_id) also in train")]
    assert store.meta["rows"] == {"train": 11, "test": 5, "fit": 10, "valid": 1, "rejected": 1}


def test_metrics_at_10_and_20_and_the_cold_segments(run, fixed_scorer) -> None:
    store, _ = run
    train, test = store.data("train"), store.data("test")
    assert list(train.users.ids) == ["u1", "u2", "u3", "u4", "u5"]
    scores = np.tile(np.arange(25, 0, -1, dtype=np.float32), (5, 1))  # i00 best, then i01...
    result = evaluate({"fixed": fixed_scorer(scores, train)}, train, test, k=[10, 20])
    # Ranks after the user's training items (valid ones included) are left out:
    # u1 (seen i00-i03): i06 at 3, i23 at 20; u2 (seen i02, i03): i05 at 4;
    # u3 (seen nothing): i07 at 8; u4 (seen i00): i24 at 24.
    ideal_2 = 1 + 1 / log2(3)
    expected = {
        "ndcg@10": ((1 / 2) / ideal_2 + 1 / log2(5) + 1 / log2(9) + 0) / 4,
        "precision@10": (1 + 1 + 1 + 0) / 10 / 4,
        "recall@10": (1 / 2 + 1 + 1 + 0) / 4,
        "f1@10": (1 / 6 + 2 / 11 + 2 / 11 + 0) / 4,
        "map@10": ((1 / 3) / 2 + 1 / 4 + 1 / 8 + 0) / 4,
        "hit@10": 3 / 4,
        "mrr@10": (1 / 3 + 1 / 4 + 1 / 8 + 0) / 4,
        "coverage@10": 14 / 25,  # i00-i13
        "ndcg@20": ((1 / 2 + 1 / log2(21)) / ideal_2 + 1 / log2(5) + 1 / log2(9) + 0) / 4,
        "precision@20": (2 + 1 + 1 + 0) / 20 / 4,
        "recall@20": (1 + 1 + 1 + 0) / 4,
        "f1@20": (2 / 11 + 2 / 21 + 2 / 21 + 0) / 4,
        "map@20": ((1 / 3 + 2 / 20) / 2 + 1 / 4 + 1 / 8 + 0) / 4,
        "hit@20": 3 / 4,
        "mrr@20": (1 / 3 + 1 / 4 + 1 / 8 + 0) / 4,
        "coverage@20": 24 / 25,  # i00-i23
    }
    assert list(result.metrics["fixed"]) == list(expected)
    assert result.metrics["fixed"] == pytest.approx(expected)
    assert list(result.users["all"]) == ["u1", "u2", "u3", "u4"]
    # the unseen user is evaluated, in the cold-user segment (at most 3 training items)
    assert list(result.users["cold_users"]) == ["u2", "u3", "u4"]
    assert result.user_values("fixed", "ndcg@10", "cold_users")[1] == pytest.approx(
        1 / log2(9))
    # the test row of an item without training rows is evaluated, in the cold-item segment
    assert list(result.users["cold_items"]) == ["u4"]
    assert result.segments["cold_items"]["fixed"]["hit@20"] == 0.0
