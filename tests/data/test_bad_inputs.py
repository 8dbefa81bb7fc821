from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_corpus_covers_every_class() -> None:
    names = {c.name for c in CASES}
    assert len(names) == len(CASES)
    for word in ("nulls", "duplicate", "unknown items", "out of range", "negative", "future",
                 "unparsable", "UTF-8", "long text", "wrong column types", "missing required",
                 "empty files", "extra unknown columns", "CRLF"):
        assert any(word in n for n in names), word
    assert all(dict(c.clean) == CLEAN for c in CASES)
