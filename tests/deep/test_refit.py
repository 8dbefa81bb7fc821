"""A deep source's training started from a trained network (the flow's refit on ``train``)
stops as ``RefitConfig`` says: at most the epochs its start needed, after its own patience."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from recsys_core.deep.graph import LMGraph
from recsys_core.deep.user_encoder import UserEncoder
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions
from tests.deep.test_graph import SMALL as GRAPH
from tests.deep.test_user_encoder import SMALL as ENCODER
from tests.deep.test_user_encoder import cycle_walks


@dataclass(frozen=True)
class Source:
    kind: type[Scorer]
    config: ScorerConfig
    no_holdout: dict[str, Any]  # the fields that turn its early stopping off
    logger: str


SOURCES = {
    "user_encoder": Source(UserEncoder, ENCODER.model_copy(update={"smoothing": 1}),
                           {"early_stopping": "none"}, "recsys_core.deep.user_encoder"),
    "graph": Source(LMGraph, GRAPH, {"eval_users": 0}, "recsys_core.deep.graph"),
}


def _epochs_run(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    """Epochs run and the bound, from the training's log line."""
    found = re.search(r": (\d+) epochs of (\d+) ", caplog.text)
    assert found is not None
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize(("refit_epochs", "bound"), [("carve", 4), ("patience", 12)])
def test_a_warm_started_refit_runs_at_most_the_epochs_its_start_needed(
        name: str, refit_epochs: str, bound: int, caplog: pytest.LogCaptureFixture) -> None:
    source = SOURCES[name]
    data, _ = cycle_walks(n_users=60)
    first = source.kind(source.config.model_copy(update={"epochs": 4, **source.no_holdout})
                        ).train(data, TrainOptions(seed=1))
    assert first.best_epoch == 4  # without a holdout the last epoch is the one kept
    refit = source.kind(source.config.model_copy(update={
        "epochs": 12, "patience": 12, "refit_epochs": refit_epochs, **source.no_holdout}))
    assert refit.warm_start(first)
    with caplog.at_level("INFO", logger=source.logger):
        refit.train(data, TrainOptions(seed=2))
    assert _epochs_run(caplog) == (bound, bound)
    assert refit.best_epoch == bound


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("refit_patience", [1, 3])
def test_a_warm_started_refit_stops_after_its_own_patience(
        name: str, refit_patience: int, caplog: pytest.LogCaptureFixture) -> None:
    source = SOURCES[name]
    data, _ = cycle_walks(n_users=60)
    config = source.config.model_copy(update={
        "epochs": 30, "patience": 30, "refit_epochs": "patience",
        "refit_patience": refit_patience})
    first = source.kind(config.model_copy(update={"epochs": 8, **source.no_holdout})
                        ).train(data, TrainOptions(seed=1))
    refit = source.kind(config)
    assert refit.warm_start(first)
    with caplog.at_level("INFO", logger=source.logger):
        refit.train(data, TrainOptions(seed=2))
    run, _ = _epochs_run(caplog)
    # patience 30 would run all 30 epochs; the refit stops refit_patience checks after its best
    assert run == refit.best_epoch + refit_patience < 30
