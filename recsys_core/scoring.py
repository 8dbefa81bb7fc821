"""The one shape every source has: a frozen config, ``train``, ``is_trained``, ``score``."""

from __future__ import annotations

import copy
import logging
import threading
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Generic, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary

log = logging.getLogger(__name__)

_shared = threading.local()


@contextmanager
def shared_scores() -> Iterator[None]:
    """Within the block, each scorer scores one batch of users once (per thread).

    Evaluation ranks the same users with the fusion and with each of its sources: inside
    this block a source asked again for the users it just scored (the fusion asks first)
    returns the stored block, read-only, instead of scoring again. Only the latest batch of
    users is kept, so callers go batch by batch, every scorer on a batch before the next.
    """
    _shared.batch, _shared.blocks = None, {}
    try:
        yield
    finally:
        del _shared.batch, _shared.blocks


class ScorerConfig(BaseModel):
    """Base for every source's config: frozen, round-trips through ``model_dump``."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class TrainOptions:
    """Run-time options that are not hyperparameters.

    Args:
        seed: random seed.
        device: torch / implicit device (``cpu`` or ``cuda``).
    """

    seed: int = 42
    device: str = "cpu"


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


@dataclass(frozen=True, eq=False)
class History:
    """Pseudo-users known only by the items they touched: the input of fold-in scoring.

    Build it with ``History.of``. Item indices are internal (``Scorer.fold_in`` takes IDs).

    Args:
        sequences: per row, item indices oldest first (repeats kept, for sequence models).
        weights: per row, a weight per entry of ``sequences``.
        matrix: CSR (rows, n_items) of summed weights, what collaborative sources read.
    """

    sequences: list[np.ndarray]
    weights: list[np.ndarray]
    matrix: sp.csr_matrix

    @classmethod
    def of(cls, sequences: Sequence[np.ndarray], n_items: int,
           weights: Sequence[np.ndarray] | None = None) -> History:
        """Histories from item-index sequences (oldest first); weights default to 1.

        Args:
            sequences: item indices per row, each in ``0..n_items-1``.
            n_items: catalogue size.
            weights: a weight per entry of each sequence.
        """
        seqs = [np.asarray(s, dtype=np.int64).ravel() for s in sequences]
        if weights is None:
            wts = [np.ones(len(s), dtype=np.float32) for s in seqs]
        else:
            wts = [np.asarray(w, dtype=np.float32).ravel() for w in weights]
            if [len(w) for w in wts] != [len(s) for s in seqs]:
                raise ValueError("weights must align with sequences")
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        flat = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= n_items):
            raise ValueError(f"item indices must lie in 0..{n_items - 1}")
        rows = np.repeat(np.arange(len(seqs)), lengths)
        values = np.concatenate(wts) if wts else np.zeros(0, dtype=np.float32)
        matrix = sp.csr_matrix((values, (rows, flat)), shape=(len(seqs), n_items),
                               dtype=np.float32)
        matrix.sum_duplicates()
        matrix.sort_indices()
        return cls(seqs, wts, matrix)

    def __len__(self) -> int:
        return len(self.sequences)

    def ages(self) -> np.ndarray:
        """Per stored entry of ``matrix`` (CSR order): how many distinct items came later.

        The most recent item has age 0, as ``interaction_ages`` counts for training data.
        """
        out = np.zeros(self.matrix.nnz, dtype=np.int64)
        for row, seq in enumerate(self.sequences):
            start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
            last = {int(item): pos for pos, item in enumerate(seq)}
            newest_first = sorted(last, key=last.__getitem__, reverse=True)
            age = {item: rank for rank, item in enumerate(newest_first)}
            out[start:end] = [age[int(i)] for i in self.matrix.indices[start:end]]
        return out


C = TypeVar("C", bound=ScorerConfig)


class Scorer(ABC, Generic[C]):
    """A recommendation source.

    Subclasses set ``name`` and implement ``_fit`` and ``_score``; the base maps IDs to
    indices, so unknown users get NaN rows and no index ever crosses the public API.
    Sources that can score a user from a list of items (fold-in: users unknown at training
    time, or a session's recent items) also implement ``_fold_in``.
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

    def train(self, data: InteractionData, options: TrainOptions | None = None) -> Self:
        """Fit on ``data`` and return self.

        Args:
            data: training interactions (and content) over fixed vocabularies.
            options: seed and device.
        """
        self.users, self.items = data.users, data.items
        self._fit(data, options or TrainOptions())
        return self

    def is_trained(self) -> bool:
        """Whether ``train`` has run."""
        return self.items is not None

    def vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        """(users, items) the scorer was trained over.

        Raises:
            RuntimeError: it is not trained.
        """
        if self.users is None or self.items is None:
            raise RuntimeError(f"{type(self).__name__} is not trained")
        return self.users, self.items

    def without_users(self, user_ids: Iterable[str]) -> Self | None:
        """A copy that no longer knows ``user_ids``, or ``None`` when it cannot drop them.

        Found by shape, so a new source needs no code for it: every attribute whose first
        axis runs over the training users (numpy arrays, scipy sparse matrices, lists,
        tuples, also inside dicts and plain objects) keeps only the other users' rows, nested
        scorers (a fusion's sources) drop the users alike, and the user vocabulary loses
        them. What was learned over items (factors, similarities, network weights) stays.
        ``None`` when per-user state cannot be told apart: as many items as users, another
        axis as long as the users, or a torch tensor with such an axis (a user embedding
        table); such a model has to be retrained without the users.

        Args:
            user_ids: the users to drop; ids the scorer does not know are ignored.
        """
        users = self.vocabularies()[0]
        keep = np.ones(len(users), dtype=bool)
        index = users.index(list(user_ids))
        keep[index[index >= 0]] = False
        state = _UserRows(self, keep, list(user_ids))
        clone = state.drop(self)
        return None if clone is _CANNOT else typing.cast(Self, clone)

    def score(self, users: Sequence[str] | np.ndarray, items: Sequence[str] | None = None
              ) -> Scores:
        """Score ``users`` over ``items`` (all items when ``None``).

        Args:
            users: user IDs; unknown ones get NaN rows.
            items: item IDs to keep as columns; unknown ones get NaN columns.
        """
        user_vocab, item_vocab = self.vocabularies()
        ids = np.asarray(users, dtype=object)
        index = user_vocab.index(ids)
        values = np.full((len(ids), len(item_vocab)), np.nan, dtype=np.float32)
        known = index >= 0
        if known.any():
            values[known] = self.score_indices(index[known])
        if items is None:
            return Scores(ids, item_vocab, values)
        wanted = Vocabulary(items)
        cols = item_vocab.index(wanted.ids)
        out = np.full((len(ids), len(wanted)), np.nan, dtype=np.float32)
        out[:, cols >= 0] = values[:, cols[cols >= 0]]
        return Scores(ids, wanted, out)

    def score_indices(self, user_index: np.ndarray) -> np.ndarray:
        """Scores (len(user_index), n_items) for known user rows; internal fast path.

        Inside ``shared_scores`` the result is stored (read-only) for the batch.
        """
        index = np.asarray(user_index, dtype=np.int64)
        blocks = getattr(_shared, "blocks", None)
        if blocks is None:
            return np.asarray(self._score(index), dtype=np.float32)
        batch = index.tobytes()
        if batch != _shared.batch:
            _shared.batch, _shared.blocks = batch, {}
            blocks = _shared.blocks
        if id(self) not in blocks:
            values = np.array(self._score(index), dtype=np.float32)
            values.flags.writeable = False
            blocks[id(self)] = (self, values)  # the scorer is held so its id stays unique
        return blocks[id(self)][1]

    def fold_in(self, histories: Sequence[Sequence[str]],
                weights: Sequence[Sequence[float]] | None = None) -> Scores:
        """Score pseudo-users the model never saw, from the items they touched (fold-in).

        Args:
            histories: per pseudo-user, item IDs oldest first; unknown IDs are ignored.
            weights: per pseudo-user, a weight per item ID (1 when ``None``).

        Returns:
            Scores whose ``users`` are the row positions as strings; NaN rows where the
            source cannot fold in or a history holds no known item.
        """
        item_vocab = self.vocabularies()[1]
        index = [item_vocab.index(list(h)) for h in histories]
        sequences = [i[i >= 0] for i in index]
        kept = None if weights is None else [
            np.asarray(w, dtype=np.float32)[i >= 0] for w, i in zip(weights, index, strict=True)]
        values = self.fold_in_indices(History.of(sequences, len(item_vocab), kept))
        return Scores(np.array([str(r) for r in range(len(index))], dtype=object), item_vocab,
                      values)

    def fold_in_indices(self, history: History) -> np.ndarray:
        """Fold-in scores (len(history), n_items); internal fast path of ``fold_in``.

        Args:
            history: the pseudo-users, over this scorer's item indices.
        """
        n_items = len(self.vocabularies()[1])
        values = self._fold_in(history)
        if values is None:
            return np.full((len(history), n_items), np.nan, dtype=np.float32)
        return np.asarray(values, dtype=np.float32)

    def warm_start(self, previous: Scorer[C]) -> bool:
        """Let the next ``train`` start from ``previous``'s learned parameters.

        For sources trained by gradient descent, a model refit on more data (the whole
        training part after a validation carve) converges in a few epochs from the carve's
        model. ``previous`` must have this config and these vocabularies' items.

        Args:
            previous: the same source trained on a subset of the data.

        Returns:
            Whether the source will start from it (the default: no, it trains from scratch).
        """
        return False

    def readouts(self) -> tuple[float, ...]:
        """Ways this trained source can read its users without training again (``read``).

        Empty (the default) when there is one; the first is the one ``train`` leaves.
        """
        return ()

    def read(self, readout: float) -> Self:
        """A copy that reads its users with ``readout``, one of ``readouts()``.

        Raises:
            ValueError: the source has no such readout.
        """
        raise ValueError(f"source {self.name!r} has no readout {readout!r}")

    @abstractmethod
    def _fit(self, data: InteractionData, options: TrainOptions) -> None: ...

    @abstractmethod
    def _score(self, user_index: np.ndarray) -> np.ndarray: ...

    def _fold_in(self, history: History) -> np.ndarray | None:
        """Source hook: scores for pseudo-users; ``None`` (the default) = cannot fold in."""
        return None


_CANNOT = object()
"""``_UserRows.drop``'s answer for state it cannot drop users from."""


class _UserRows:
    """Drops the rows of some users from whatever a scorer holds (``Scorer.without_users``)."""

    def __init__(self, root: Scorer, keep: np.ndarray, user_ids: list[str]) -> None:
        self.root, self.keep, self.user_ids = root, keep, user_ids
        self.users, items = root.vocabularies()
        self.n = len(self.users)
        self.ambiguous = self.n == len(items)
        self.kept_users = Vocabulary(self.users.ids[keep])
        self.memo: dict[int, object] = {}

    def drop(self, value: object) -> object:
        key = id(value)
        if key not in self.memo:
            self.memo[key] = self._drop(value)
        return self.memo[key]

    def _drop(self, value: object) -> object:
        if isinstance(value, Scorer) and value is not self.root:  # its own rule
            nested = value.without_users(self.user_ids)
            return _CANNOT if nested is None else nested
        if isinstance(value, Vocabulary):
            return self.kept_users if value == self.users else value
        if isinstance(value, np.ndarray):
            return self._rows(value, value.shape)
        if sp.issparse(value):
            matrix = typing.cast(typing.Any, value)
            if self.n not in matrix.shape:
                return value
            rows = self._rows(matrix.tocsr(), matrix.shape)
            return rows if rows is _CANNOT else typing.cast(typing.Any, rows).asformat(
                matrix.format)
        if isinstance(value, BaseModel | str | bytes | int | float | bool | type) or value is None:
            return value
        if hasattr(value, "named_parameters") or hasattr(value, "detach"):  # torch
            return self._tensors(value)
        if isinstance(value, dict):
            return self._each(value.items(), dict)
        if isinstance(value, list | tuple):
            if len(value) == self.n:
                return _CANNOT if self.ambiguous else type(value)(
                    item for item, kept in zip(value, self.keep, strict=True) if kept)
            return self._each(enumerate(value), lambda pairs: type(value)(v for _, v in pairs))
        if hasattr(value, "__dict__"):
            clone = copy.copy(value)
            for name, inner in vars(value).items():
                new = self.drop(inner)
                if new is _CANNOT:
                    return _CANNOT
                vars(clone)[name] = new
            return clone
        return value

    def _rows(self, value: typing.Any, shape: tuple[int, ...]) -> object:
        if not shape:
            return value
        if shape[0] == self.n and not self.ambiguous and self.n not in shape[1:]:
            return value[self.keep]
        return _CANNOT if self.n in shape else value

    def _tensors(self, value: typing.Any) -> object:
        tensors = ([value] if hasattr(value, "detach")
                   else [t for _, t in value.named_parameters()] + [
                       t for _, t in value.named_buffers()])
        return _CANNOT if any(self.n in tuple(t.shape) for t in tensors) else value

    def _each(self, pairs: Iterable[tuple[typing.Any, typing.Any]],
              build: typing.Callable[[list[tuple[typing.Any, typing.Any]]], object]) -> object:
        out = []
        for key, inner in pairs:
            new = self.drop(inner)
            if new is _CANNOT:
                return _CANNOT
            out.append((key, new))
        return build(out)
