"""The one shape every source has: a frozen config, ``train``, ``is_trained``, ``score``."""

from __future__ import annotations

import logging
import typing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary

log = logging.getLogger(__name__)


class ScorerConfig(BaseModel):
    """Base for every source's config: frozen, round-trips through ``model_dump``."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class TrainOptions:
    """Run-time options that are not hyperparameters.

    Args:
        seed: random seed.
        device: torch / implicit device (``cpu`` or ``cuda``).
        validation: held-out interactions for early stopping (never test data).
    """

    seed: int = 42
    device: str = "cpu"
    validation: InteractionData | None = None


@dataclass(frozen=True)
class Scores:
    """Scores for some users over some items.

    Args:
        users: the user IDs (rows).
        items: the item vocabulary (columns).
        values: float32 (len(users), len(items)); NaN where the source cannot score.
    """

    users: np.ndarray
    items: Vocabulary
    values: np.ndarray


C = TypeVar("C", bound=ScorerConfig)


class Scorer(ABC, Generic[C]):
    """A recommendation source.

    Subclasses set ``name`` and implement ``_fit`` and ``_score``; the base maps IDs to
    indices, so unknown users get NaN rows and no index ever crosses the public API.
    """

    name: ClassVar[str]

    def __init__(self, config: C) -> None:
        self.config = config
        self.users: Vocabulary | None = None
        self.items: Vocabulary | None = None

    @classmethod
    def config_class(cls) -> type[ScorerConfig]:
        """The config class this scorer is parametrised with (``Scorer[XxxConfig]``)."""
        for klass in cls.__mro__:
            for base in getattr(klass, "__orig_bases__", ()):
                args = typing.get_args(base)
                if args and isinstance(args[0], type) and issubclass(args[0], ScorerConfig):
                    return args[0]
        raise TypeError(f"{cls.__name__} does not declare its config class")

    def train(self, data: InteractionData, options: TrainOptions | None = None) -> Scorer[C]:
        """Fit on ``data`` and return self.

        Args:
            data: training interactions (and content) over fixed vocabularies.
            options: seed, device, validation data.
        """
        self.users, self.items = data.users, data.items
        self._fit(data, options or TrainOptions())
        return self

    def is_trained(self) -> bool:
        """Whether ``train`` has run."""
        return self.items is not None

    def score(self, users: Sequence[str] | np.ndarray, items: Sequence[str] | None = None
              ) -> Scores:
        """Score ``users`` over ``items`` (all items when ``None``).

        Args:
            users: user IDs; unknown ones get NaN rows.
            items: item IDs to keep as columns; unknown ones get NaN columns.
        """
        if not self.is_trained():
            raise RuntimeError(f"{type(self).__name__} is not trained")
        ids = np.asarray(users, dtype=object)
        index = self.users.index(ids)
        values = np.full((len(ids), len(self.items)), np.nan, dtype=np.float32)
        known = index >= 0
        if known.any():
            values[known] = self.score_indices(index[known])
        if items is None:
            return Scores(ids, self.items, values)
        wanted = Vocabulary(items)
        cols = self.items.index(wanted.ids)
        out = np.full((len(ids), len(wanted)), np.nan, dtype=np.float32)
        out[:, cols >= 0] = values[:, cols[cols >= 0]]
        return Scores(ids, wanted, out)

    def score_indices(self, user_index: np.ndarray) -> np.ndarray:
        """Scores (len(user_index), n_items) for known user rows; internal fast path."""
        return np.asarray(self._score(np.asarray(user_index, dtype=np.int64)), dtype=np.float32)

    @abstractmethod
    def _fit(self, data: InteractionData, options: TrainOptions) -> None: ...

    @abstractmethod
    def _score(self, user_index: np.ndarray) -> np.ndarray: ...
