from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError

from recsys_core import workers
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
    with pytest.raises(ValidationError, match=r"user_encoder: dim \(64\) must be a multiple"):
        TrainingConfig(sources={"user_encoder": {"heads": 3}})
    with pytest.raises(ValidationError, match="als.factors: Input should be greater than 0"):
        TrainingConfig(sources={"als": {"factors": 0}})


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


def test_a_stage_beside_the_trainings_runs_while_they_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fusion's tuning runs while the refit trains, in the calling thread."""
    monkeypatch.setattr(workers, "_pool", object())  # as in the flow: a pool is open
    started = threading.Event()
    threads: set[int] = set()

    def train(part: str, name: str) -> str:
        threads.add(threading.get_ident())
        started.set()
        return f"{part}/{name}.pkl"

    def tune() -> None:
        assert started.wait(10), "no training ran beside the tuner"

    names = ["als", "projector", "user_encoder", "user_history", "ease"]
    paths = train_side_by_side(train, names, ["train"], 2, tune)
    assert paths == [{name: f"train/{name}.pkl" for name in names}]
    assert threading.get_ident() not in threads


def test_without_a_pool_the_stage_beside_runs_before_the_trainings() -> None:
    order: list[str] = []
    train_side_by_side(lambda part, name: order.append(name) or name, ["ease", "als"], ["fit"],
                       2, lambda: order.append("tune"))
    assert order[0] == "tune" and sorted(order[1:]) == ["als", "ease"]


def test_a_failing_stage_beside_drops_the_trainings_not_started(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_pool", object())
    trained: list[str] = []
    release = threading.Event()

    def train(part: str, name: str) -> str:
        release.wait(10)
        trained.append(name)
        return name

    def tune() -> None:
        threading.Timer(0.2, release.set).start()  # the running training ends after the raise
        raise RuntimeError("tuner broke")

    with pytest.raises(RuntimeError, match="tuner broke"):
        train_side_by_side(train, ["ease", "als", "itemknn"], ["fit"], 1, tune)
    assert len(trained) == 1  # the one running ended; the queued ones were dropped
