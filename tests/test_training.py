from __future__ import annotations

import pytest
from pydantic import ValidationError

from recsys_core.scoring import ScorerConfig
from recsys_core.training import (
    BASELINES,
    BUILT_ON,
    SOURCES,
    TrainingConfig,
    make_source,
    train_side_by_side,
    training_chains,
)


def test_every_source_builds_from_its_own_config_class() -> None:
    for name, cls in SOURCES.items():
        scorer = make_source(name)
        assert type(scorer) is cls and scorer.name == name
        assert isinstance(scorer.config, ScorerConfig)
        assert type(scorer.config) is cls.config_class()


def test_make_source_validates_params() -> None:
    assert make_source("als", {"factors": 8}).config.factors == 8
    with pytest.raises(ValidationError):
        make_source("als", {"no_such_field": 1})


def test_training_config_round_trips_and_rejects_unknown_names() -> None:
    config = TrainingConfig(protocol="leave_last", k=5, sources={"als": {"factors": 4},
                                                                 "mostpop": {}})
    assert TrainingConfig.model_validate(config.model_dump()) == config
    assert config.fused_sources == ["als"] and "mostpop" in BASELINES
    with pytest.raises(ValidationError, match="unknown protocol"):
        TrainingConfig(protocol="random")
    with pytest.raises(ValidationError, match="unknown sources"):
        TrainingConfig(sources={"magic": {}})


def test_training_chains_order_each_source_after_its_base_and_costly_runs_first() -> None:
    names = ["user_history", "als", "text", "projector", "user_encoder", "ease"]
    chains = training_chains(names)
    assert chains == [["user_encoder", "user_history"], ["als", "projector"], ["text"],
                      ["ease"]]
    assert sorted(name for chain in chains for name in chain) == sorted(names)
    for source, base in BUILT_ON.items():
        assert list(SOURCES).index(base) < list(SOURCES).index(source)
    assert training_chains(["projector"]) == [["projector"]]  # its base not trained: alone


def test_train_side_by_side_trains_every_source_on_every_part_base_first() -> None:
    calls: list[tuple[str, str]] = []

    def train(part: str, name: str) -> str:
        calls.append((part, name))
        return f"{part}/{name}.pkl"

    names = ["als", "projector", "user_encoder", "user_history", "ease"]
    paths = train_side_by_side(train, names, ["fit", "fit2"], lanes=2)
    assert paths == [{name: f"{part}/{name}.pkl" for name in names} for part in ("fit", "fit2")]
    assert [list(p) for p in paths] == [names, names]  # in the order asked for
    assert sorted(calls) == sorted((part, name) for part in ("fit", "fit2") for name in names)
    for part in ("fit", "fit2"):
        for source, base in BUILT_ON.items():
            assert calls.index((part, base)) < calls.index((part, source))
