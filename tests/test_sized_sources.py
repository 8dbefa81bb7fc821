"""Scale guards in the pipeline: EASE dropped above max_items, large runs skip the search
and refit (the evaluated users' bound: tests/evaluation/test_limits.py)."""

from __future__ import annotations

import logging

from recsys_core import pipeline
from recsys_core.training import TrainingConfig
from tests.evaluation.conftest import make_data


class _Store:
    def __init__(self, n_warm: int) -> None:
        self.train = make_data(3, 50, [(u, i) for u in range(3) for i in range(n_warm)])
        self.meta = {"rows": {"train": self.train.matrix.nnz}}

    def data(self, part: str):
        assert part == "train"
        return self.train


def test_ease_above_max_items_is_dropped_with_a_reason(caplog) -> None:
    sources = {"als": {"factors": 8}, "ease": {"max_items": 20}, "mostpop": {}}
    with caplog.at_level(logging.WARNING, logger="recsys_core.pipeline"):
        kept = pipeline.sized_sources(_Store(n_warm=30), sources)
    assert kept == {"als": {"factors": 8}, "mostpop": {}}
    assert "ease skipped: 30 warm items exceed its max_items=20" in caplog.text


def test_sources_within_their_limits_are_all_kept() -> None:
    sources = {"ease": {"max_items": 20}, "itemknn": {}}
    assert pipeline.sized_sources(_Store(n_warm=20), sources) == sources


def test_a_large_run_skips_the_source_search_the_second_carve_and_the_refit(caplog) -> None:
    config = TrainingConfig(sources={"als": {}, "ease": {"max_items": 20}}, source_trials=4)
    with caplog.at_level(logging.WARNING, logger="recsys_core.pipeline"):
        planned = pipeline.size_plan(_Store(n_warm=30), config, large_run=89)
    assert (planned.sources, planned.source_trials, planned.refit, planned.carves) == (
        {"als": {}}, 0, False, 1)
    assert "large run (90 training interactions > 89)" in caplog.text


def test_a_run_at_the_large_run_bound_keeps_search_and_refit() -> None:
    config = TrainingConfig(sources={"als": {}}, source_trials=4)
    planned = pipeline.size_plan(_Store(n_warm=30), config, large_run=90)
    assert planned == config

