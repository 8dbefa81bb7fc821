from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from recsys_core.data import schema as S
from recsys_core.warehouse import Warehouse
from tests.data.bad_inputs import CASES, CLEAN, Case, run_case


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return Warehouse(tmp_path_factory.mktemp("bad-inputs") / "wh.duckdb")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, warehouse: Warehouse) -> None:
    outcome = run_case(case, tmp_path / "data", warehouse)
    if case.error is not None:
        assert outcome.error is not None, outcome.describe()
        assert "\n" not in outcome.error
        assert re.search(case.error, outcome.error), outcome.error
        return
    assert outcome.error is None, outcome.error
    assert outcome.quarantined == dict(case.quarantined), outcome.describe()
    assert outcome.clean == dict(case.clean), outcome.describe()
    assert outcome.duplicates == dict(case.duplicates), outcome.describe()
    if case.reasons is not None:
        assert outcome.reasons == {t: dict(r) for t, r in case.reasons.items()}


LATER_WINS = [c for c in CASES if "different values" in c.name]


@pytest.mark.parametrize("case", LATER_WINS, ids=[c.name for c in LATER_WINS])
def test_the_later_row_is_the_one_in_the_snapshot(case: Case, tmp_path: Path,
                                                  warehouse: Warehouse) -> None:
    snapshot = run_case(case, tmp_path / "data", warehouse).snapshot
    assert snapshot is not None
    inter = warehouse.interactions(snapshot).filter(
        (pl.col(S.USER_ID) == "u1") & (pl.col(S.ITEM_ID) == "i1"))
    assert inter[S.RATING].to_list() == [2.0]  # GOOD's 4.0 was superseded
    items = warehouse.items(snapshot).filter(pl.col(S.ITEM_ID) == "i2")
    assert items[S.TITLE].to_list() == ["Two renamed"]


def test_corpus_covers_every_class() -> None:
    names = {c.name for c in CASES}
    assert len(names) == len(CASES)
    for word in ("nulls", "bad copy of a good row", "exact duplicate", "unknown items",
                 "out of range", "negative", "future", "unparsable", "UTF-8", "long text",
                 "wrong column types", "missing required", "empty files",
                 "extra unknown columns", "CRLF", "different values, one load",
                 "different values, two loads"):
        assert any(word in n for n in names), word
    assert all(dict(c.clean) == CLEAN for c in CASES)
    assert len(LATER_WINS) == 2
