"""The catalogue of sources and the training configuration that names them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recsys_core import workers
from recsys_core.cf.ease import EASE
from recsys_core.cf.implicit_models import ALS, BPR, ItemKNN, ItemKNNBM25
from recsys_core.cf.popular import MostPop
from recsys_core.config import first_error
from recsys_core.deep.graph import LMGraph
from recsys_core.deep.projector import ContentProjector
from recsys_core.deep.text_similarity import TextSimilarity
from recsys_core.deep.user_encoder import UserEncoder
from recsys_core.deep.user_history import UserHistory
from recsys_core.evaluation.splits import PROTOCOLS
from recsys_core.runstore import MAX_CARVES, Part
from recsys_core.scoring import Scorer

SOURCES: dict[str, type[Scorer]] = {
    cls.name: cls
    for cls in (MostPop, ALS, BPR, ItemKNN, ItemKNNBM25, EASE, TextSimilarity, ContentProjector,
                LMGraph, UserEncoder, UserHistory)
}
"""Source name (as in reports) -> scorer class; each class's config is its first argument."""

BASELINES = ("mostpop",)
"""Sources reported beside the fusion but never fused (the peer every model must beat)."""

CONTENT_SOURCES = frozenset({"text", "projector", "graph", "user_encoder", "user_history"})
"""Sources that need item embeddings."""


def _default_sources() -> dict[str, dict[str, Any]]:
    return {"mostpop": {}, "als": {}, "itemknn": {}, "ease": {}, "text": {}, "projector": {},
            "graph": {}, "user_encoder": {}, "user_history": {}}


class TrainingConfig(BaseModel):
    """What one training run does; logged to MLflow as params.

    Args:
        protocol: evaluation protocol (stratified, temporal, leave_last, cold_items).
        k: metric cut-off.
        seed: seed for the split, the models and the tuner.
        trials: Optuna trials of the fusion tuner.
        source_trials: fits per searchable source when tuning its hyperparameters alone on
            the validation split (0: keep the given params).
        sources: source name -> its config fields (defaults where empty).
        refit: after tuning on the validation split, retrain sources on the whole training
            split (the tuned weights are kept).
        carves: validation carves of the training split the fusion is tuned on, each with
            the sources trained on its own fit part (``evaluation.splits.validation_carves``);
            the per-source search uses the first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: str = "stratified"
    k: int = Field(10, ge=1)
    seed: int = 42
    trials: int = Field(30, ge=0)
    source_trials: int = Field(4, ge=0)
    sources: dict[str, dict[str, Any]] = Field(default_factory=_default_sources)
    refit: bool = True
    carves: int = Field(2, ge=1, le=MAX_CARVES)

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise ValueError(f"unknown protocol {value!r}; expected one of {', '.join(PROTOCOLS)}")
        return value

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(value) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown sources {unknown}; expected some of {sorted(SOURCES)}")
        for name, params in value.items():  # refused now, not when the source is trained
            try:
                SOURCES[name].config_class().model_validate(params)
            except ValidationError as exc:
                field, reason = first_error(exc)
                raise ValueError(f"{name}.{field}: {reason}" if field else f"{name}: {reason}"
                                 ) from None
        return value

    @property
    def fused_sources(self) -> list[str]:
        """Sources the fusion combines (all but the baselines)."""
        return [name for name in self.sources if name not in BASELINES]


def make_source(name: str, params: dict[str, Any] | None = None) -> Scorer:
    """A fresh, untrained scorer for source ``name`` with config fields ``params``.

    Args:
        name: a key of ``SOURCES``.
        params: config fields; validated by the source's config class.
    """
    cls = SOURCES[name]
    return cls(cls.config_class().model_validate(params or {}))


BUILT_ON = {"projector": "als", "user_history": "user_encoder"}
"""Source -> the source whose model of the same part it reuses (``pipeline.train_source``):
trained after it, it is not trained twice."""


def training_chains(names: list[str]) -> list[list[str]]:
    """``names`` in runs to train one after another; the runs are independent of each other.

    A source is in the run of the source it is built on (``BUILT_ON``), after it. The runs
    come most expensive first, so that trainings side by side do not end with a long one
    started last: ``SOURCES`` lists the catalogue from cheap (MostPop) to costly (the user
    encoder), and a run costs as its costliest source.

    Args:
        names: source names.
    """
    chains: dict[str, list[str]] = {}
    for name in names:
        base = BUILT_ON.get(name)
        chains.setdefault(base if base in names else name, []).append(name)
    rank = {name: position for position, name in enumerate(SOURCES)}
    ordered = [sorted(chain, key=lambda name: name != root) for root, chain in chains.items()]
    return sorted(ordered, key=lambda chain: -max(rank[name] for name in chain))


def train_side_by_side(train: Callable[[Part, str], str], names: list[str], parts: list[Part],
                       lanes: int, beside: Callable[[], object] | None = None
                       ) -> list[dict[str, str]]:
    """``train(part, name)`` for each of ``names`` on each of ``parts``, as paths per part.

    The runs of ``training_chains`` on every part go to ``workers.side_by_side`` in
    ``lanes`` threads, with ``beside``; ``train`` is called from those threads.

    Args:
        train: trains one source on one part; returns its stored model's path.
        names: source names.
        parts: the parts to train them on (the carves' fit parts, or ``train``).
        lanes: trainings at a time.
        beside: a stage the trainings do not need (the fusion's tuning, beside the refit),
            run meanwhile in the calling thread.
    """
    paths: dict[Part, dict[str, str]] = {part: {} for part in parts}

    def train_chain(part: Part, chain: list[str]) -> None:
        for name in chain:
            paths[part][name] = train(part, name)

    workers.side_by_side([functools.partial(train_chain, part, chain)
                          for chain in training_chains(names) for part in parts], lanes, beside)
    return [{name: paths[part][name] for name in names} for part in parts]
