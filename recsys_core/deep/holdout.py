"""Early stopping for the deep sources on a holdout carved from their own training data.

Each of up to ``eval_users`` users with at least three items lends their latest item (by
time, else the last in matrix order) to a holdout; the model trains without it and is scored
on ranking it among the items the user has not seen. The fusion tuner's validation split is
therefore never what selects a deep source's epoch, and a source trained on the tuning part
and one trained on the whole training part are trained alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from recsys_core.data.interactions import InteractionData
from recsys_core.scoring import ScorerConfig

log = logging.getLogger(__name__)

MIN_ITEMS = 3
"""Users need this many items to lend one to the holdout (two stay in training)."""


@dataclass(frozen=True)
class Holdout:
    """Held-out latest items of some users.

    Args:
        users: user rows, ascending.
        history: per user, the items kept in training (oldest first).
        truth: per user, the held-out item.
    """

    users: np.ndarray
    history: list[np.ndarray]
    truth: np.ndarray

    def ndcg(self, scores: torch.Tensor, k: int) -> float:
        """Mean NDCG@k of the held-out items, seen items excluded.

        Args:
            scores: float (len(users), n_items) on any device; modified in place.
            k: cut-off.
        """
        for row, seen in enumerate(self.history):
            scores[row, torch.from_numpy(seen).to(scores.device)] = -torch.inf
        truth = torch.from_numpy(self.truth).to(scores.device)
        target = scores.gather(1, truth[:, None])
        rank = (scores > target).sum(dim=1).cpu().numpy()
        gains = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
        return float(gains.mean())


def ordered_sequences(data: InteractionData, gen: torch.Generator,
                      blocks: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Each user's items oldest first; items of the same time in a seeded random order.

    Only time orders a history: interactions that share a timestamp (a burst logged in the
    same second), or all of a user's when time is unknown, have no order, and matrix order
    is item-index order. Kept, that order teaches a sequence model "the next item has a
    higher index", which a split that breaks ties by ID then rewards; the holdout would
    likewise always take the tied item of the highest index.

    Args:
        data: the training data.
        gen: seeded generator.
        blocks: ``time_blocks(data)``, where the caller has it already.
    """
    return shuffle_ties([data.sequence(u) for u in range(data.n_users)],
                        time_blocks(data) if blocks is None else blocks, gen)


def time_blocks(data: InteractionData) -> list[np.ndarray]:
    """Per user, a non-decreasing block number for each item of ``data.sequence(u)``.

    Items share a block when they share a time; every item of a user shares block 0 when
    time is unknown.

    Args:
        data: the training data.
    """
    if data.times is None:
        return [np.zeros(n, dtype=np.int64) for n in np.diff(data.matrix.indptr)]
    indptr, times = data.matrix.indptr, data.times.data
    blocks = []
    for start, end in zip(indptr[:-1], indptr[1:], strict=True):
        stamps = np.sort(times[start:end], kind="stable")
        blocks.append(np.concatenate([[0], np.cumsum(stamps[1:] != stamps[:-1])])
                      .astype(np.int64) if end > start else np.zeros(0, dtype=np.int64))
    return blocks


def has_ties(block: np.ndarray) -> bool:
    """Whether two items of a user's ``time_blocks`` row share a block."""
    return bool(len(block) > 1 and (block[1:] == block[:-1]).any())


def shuffle_ties(sequences: list[np.ndarray], blocks: list[np.ndarray], gen: torch.Generator
                 ) -> list[np.ndarray]:
    """``sequences`` with the items of each block in a new seeded random order.

    Args:
        sequences: per user, items in block order.
        blocks: per user, the block of each item (``time_blocks``), at least as long as the
            sequence (a carved sequence lacks its last items).
        gen: seeded generator.
    """
    out = []
    for sequence, block in zip(sequences, blocks, strict=True):
        block = block[:len(sequence)]
        if has_ties(block):
            sequence = sequence[np.lexsort((torch.rand(len(block), generator=gen).numpy(),
                                            block))]
        out.append(sequence)
    return out


def carve(sequences: list[np.ndarray], max_users: int, gen: torch.Generator
          ) -> tuple[list[np.ndarray], Holdout | None]:
    """Training sequences without the holdout items, and the holdout (``None`` if empty).

    Args:
        sequences: per user row, item indices oldest first.
        max_users: most users held out from (a seeded sample above this).
        gen: seeded generator.
    """
    users = np.flatnonzero([len(s) >= MIN_ITEMS for s in sequences])
    if len(users) > max_users:
        pick = torch.randperm(len(users), generator=gen)[:max_users].numpy()
        users = np.sort(users[pick])
    if not len(users):
        return sequences, None
    kept = list(sequences)
    for u in users:
        kept[u] = sequences[u][:-1]
    truth = np.array([sequences[u][-1] for u in users], dtype=np.int64)
    return kept, Holdout(users, [kept[u] for u in users], truth)


class EarlyStopping:
    """Keep the best state by holdout NDCG; stop after ``patience`` checks without gain.

    With ``smoothing`` above 1 a check counts as the mean of the latest ``smoothing`` values
    (fewer at the start). A holdout of one item per user moves by chance from epoch to epoch
    (with 610 users, by as much as a real gain of several epochs), so a single lucky epoch
    sets a best that the next ``patience`` cannot pass and training stops while the model is
    still improving; the mean of a few checks moves by chance less.

    Args:
        module: the network whose ``state_dict`` is kept.
        patience: checks without improvement before ``step`` returns ``True``.
        smoothing: checks averaged into the value compared.

    Attributes:
        best_check: the number of the best check so far (1 for the first; 0 before any).
    """

    def __init__(self, module: torch.nn.Module, patience: int, smoothing: int = 1) -> None:
        self.module, self.patience, self.smoothing = module, patience, smoothing
        self.best, self.stale, self.best_check = -1.0, 0, 0
        self.values: list[float] = []
        self.state: dict[str, torch.Tensor] | None = None

    def step(self, value: float) -> bool:
        """Record one check's value; whether to stop now."""
        self.values.append(value)
        value = float(np.mean(self.values[-self.smoothing:]))
        if value > self.best:
            self.best, self.stale, self.best_check = value, 0, len(self.values)
            self.state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self) -> None:
        """Load the best state seen (no-op when nothing was checked)."""
        if self.state is not None:
            self.module.load_state_dict(self.state)


class RefitConfig(ScorerConfig):
    """How a deep source's training started from a trained network stops.

    The flow refits each deep source on ``train`` from its model of the first carve's fit
    part (``Scorer.warm_start``): a network already at its best on most of the same data.

    Args:
        refit_epochs: such a training runs at most as many epochs as that network needed to
            reach its best (``carve``), or as many as its own early stopping allows
            (``patience``). The refit's holdout is one item per user, so its NDCG rises and
            falls by chance from epoch to epoch; with ``patience`` a user-encoder refit ran
            37 epochs where its carve model had needed 21.
        refit_patience: ``patience`` of such a training. Its gains come early: refitted one
            level down (``bench/refit.py``), patience 2 kept the user encoder of patience 5 on
            ml-latest-small stratified and amazon-scientific leave_last, and cost
            ml-latest-small leave_last 1% for half the seconds.
    """

    refit_epochs: Literal["carve", "patience"] = "carve"
    refit_patience: int = Field(2, gt=0)

    def refit_budget(self, epochs: int, best_epoch: int | None) -> tuple[int, int]:
        """Epoch bound and patience of a training started from a network kept at ``best_epoch``.

        Args:
            epochs: the bound of a training from scratch.
            best_epoch: the epoch the starting network was kept at (``None``: unknown).
        """
        if self.refit_epochs == "carve" and best_epoch:
            epochs = min(epochs, best_epoch)
        return epochs, self.refit_patience


def train_epochs(epochs: int, run_epoch: Callable[[int], None],
                 check: Callable[[], float] | None, stopper: EarlyStopping
                 ) -> tuple[int, int]:
    """Run up to ``epochs`` epochs, checking after each.

    Returns:
        The number of epochs run and that of the epoch kept (the last one without ``check``).

    Args:
        epochs: upper bound.
        run_epoch: trains one epoch (given its number).
        check: the holdout metric of the current state; ``None`` runs every epoch.
        stopper: early stopping state; restored to the best epoch at the end.
    """
    epoch = 0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        run_epoch(epoch)
        if check is None:
            continue
        value = check()
        log.debug("epoch %d: holdout %.4f (%.1fs)", epoch, value, time.perf_counter() - started)
        if stopper.step(value):
            break
    stopper.restore()
    return epoch, epoch if check is None else stopper.best_check
