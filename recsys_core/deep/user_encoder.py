"""UserEncoder: a GRU over the text embeddings of a user's items, trained on next-item.

Item vectors are a learned linear map of the frozen text embeddings, so every item with
text, cold ones included, can be scored; the user vector is the GRU's state after the user's
latest item. Training is sampled softmax: each position's next item against negatives drawn
uniformly from the warm items (cold items are never sampled, so the map is not taught to
push them down), early-stopped on next-item hit rate over a holdout carved from the
training data itself (each of some users' latest item), so a model trained on the tuning part
and one trained on the whole training part are trained alike, and the fusion tuner's
validation split is never what selected the encoder's epoch.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from recsys_core.cf.warm import warm_items
from recsys_core.data.interactions import InteractionData
from recsys_core.deep.sequences import pad, windows
from recsys_core.deep.torch_utils import (
    require_embeddings,
    resolve_device,
    seeded,
    torch_threads,
)
from recsys_core.scoring import History, Scorer, ScorerConfig, TrainOptions

log = logging.getLogger(__name__)


class UserEncoderConfig(ScorerConfig):
    """Network and training settings; defaults train ~100k interactions in seconds on 2 CPUs.

    Args:
        hidden: GRU width and the size of user and item vectors.
        layers: GRU layers.
        dropout: dropout on the GRU inputs.
        max_len: items of history the user vector is computed from (and training window).
        epochs: upper bound on epochs.
        batch_size: windows per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        negatives: sampled negatives per step, shared by all positions in the batch.
        patience: validation checks without improvement before stopping.
        early_stopping: what the hit rate is checked on after each epoch: ``holdout`` (the
            latest item of up to ``eval_users`` users, held out of their training sequences),
            ``validation`` (``options.validation``; none given, no early stopping) or ``none``
            (every epoch runs).
        eval_users: validation users sampled per check (hit rate estimate).
        eval_k: cut-off of the validation hit rate.
        max_windows: training windows drawn per epoch (all of them when there are fewer), so
            an epoch's cost stops growing with the data (a window holds up to ``max_len + 1``
            items, so at 30 interactions per user 20,000 windows are about 600k of them).
    """

    hidden: int = Field(64, gt=0)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    max_len: int = Field(50, ge=1)
    epochs: int = Field(8, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    negatives: int = Field(256, gt=0)
    patience: int = Field(3, gt=0)
    early_stopping: Literal["holdout", "validation", "none"] = "holdout"
    eval_users: int = Field(2000, gt=0)
    eval_k: int = Field(10, gt=0)
    max_windows: int = Field(20_000, gt=0)


class SequenceNet(nn.Module):
    """GRU over mapped item embeddings; a linear map gives the item vectors.

    Args:
        dim_in: embedding width.
        hidden: GRU/user/item vector width.
        layers: GRU layers.
        dropout: dropout on the GRU inputs.
    """

    def __init__(self, dim_in: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.input_map = nn.Linear(dim_in, hidden)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True)
        self.user_map = nn.Linear(hidden, hidden)
        self.item_map = nn.Linear(dim_in, hidden)

    def states(self, sequence: torch.Tensor) -> torch.Tensor:
        """User vectors after every step: (B, T, d) embeddings -> (B, T, hidden).

        Args:
            sequence: item embeddings in time order (right-padded).
        """
        return self.run(self.input_map(sequence))

    def run(self, mapped: torch.Tensor) -> torch.Tensor:
        """User vectors after every step from already input-mapped items (B, T, hidden).

        Args:
            mapped: ``input_map`` of the item embeddings, in time order.
        """
        out, _ = self.gru(self.dropout(mapped))
        return self.user_map(out)

    def items(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Item vectors from embeddings: (..., d) -> (..., hidden).

        Args:
            embeddings: item text embeddings.
        """
        return self.item_map(embeddings)


class UserEncoder(Scorer[UserEncoderConfig]):
    """Sequence-aware content source: ``score(u, i) = user_vector(u) . item_vector(i)``.

    Users with no training interactions score NaN.

    Args:
        config: settings (defaults when ``None``).

    Attributes:
        net: the trained network, on CPU, in eval mode.
        user_vectors: float32 (n_users, hidden); zero rows for cold users.
        item_vectors: float32 (n_items, hidden).
    """

    name = "user_encoder"

    def __init__(self, config: UserEncoderConfig | None = None) -> None:
        super().__init__(config or UserEncoderConfig())
        self.net: SequenceNet | None = None
        self.user_vectors: np.ndarray | None = None
        self.item_vectors: np.ndarray | None = None
        self.input_vectors: np.ndarray | None = None
        self.warm_users: np.ndarray | None = None

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        c = self.config
        embeddings = require_embeddings(data.item_embeddings, self.name)
        device = resolve_device(options.device)
        sequences = [data.sequence(u) for u in range(data.n_users)]
        self.warm_users = np.array([len(s) > 0 for s in sequences], dtype=bool)
        start = time.perf_counter()
        with torch_threads(options), seeded(options.seed, device) as gen:
            table = _with_padding_row(embeddings, device)
            net = SequenceNet(embeddings.shape[1], c.hidden, c.layers, c.dropout).to(device)
            trainer = _Trainer(net, table, c, gen, warm_items(data.matrix))
            train_sequences, check = _early_stopping(data, sequences, options, c, gen)
            epochs = trainer.fit(train_sequences, check, device)
            net.eval()
            with torch.no_grad():
                self.user_vectors = _encode(net, table, sequences, c, device)
                self.item_vectors = net.items(table[:-1]).cpu().numpy()
                self.input_vectors = net.input_map(table[:-1]).cpu().numpy()
        self.net = net.cpu()
        log.info("UserEncoder: %d epochs over %d users in %.2fs", epochs, data.n_users,
                 time.perf_counter() - start)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        scores = self.user_vectors[user_index] @ self.item_vectors.T
        scores[~self.warm_users[user_index]] = np.nan
        return scores

    def _fold_in(self, history: History) -> np.ndarray | None:
        if getattr(self, "input_vectors", None) is None:  # pickled before fold-in existed
            return None
        sequences = [s[-self.config.max_len:] for s in history.sequences]
        rows = [r for r, s in enumerate(sequences) if len(s)]
        scores = np.full((len(history), len(self.item_vectors)), np.nan, dtype=np.float32)
        if not rows:
            return scores
        # Right padding with any item is harmless: the GRU is causal and each row's state is
        # read at its own last position.
        index, lengths = pad([sequences[r] for r in rows], max(len(sequences[r]) for r in rows),
                             0)
        with torch.no_grad():
            states = self.net.run(torch.from_numpy(self.input_vectors)[torch.from_numpy(index)])
            users = states[torch.arange(len(rows)), torch.from_numpy(lengths - 1)].numpy()
        scores[rows] = users @ self.item_vectors.T
        return scores


def _with_padding_row(embeddings: np.ndarray, device: torch.device) -> torch.Tensor:
    """Embeddings plus a zero row at index n_items, the padding index."""
    padded = np.vstack([embeddings, np.zeros((1, embeddings.shape[1]), dtype=np.float32)])
    return torch.from_numpy(padded).to(device)


def _encode(net: SequenceNet, table: torch.Tensor, sequences: list[np.ndarray],
            c: UserEncoderConfig, device: torch.device, batch: int = 1024) -> np.ndarray:
    """User vectors (state after each user's latest item); zero rows for empty histories."""
    out = np.zeros((len(sequences), c.hidden), dtype=np.float32)
    rows = np.array([i for i, s in enumerate(sequences) if len(s)], dtype=np.int64)
    for chunk in np.array_split(rows, max(1, -(-len(rows) // batch))):
        if not len(chunk):
            continue
        index, lengths = pad([sequences[i] for i in chunk], c.max_len, len(table) - 1)
        states = net.states(table[torch.from_numpy(index).to(device)])
        last = torch.from_numpy(lengths - 1).to(device)
        out[chunk] = states[torch.arange(len(chunk), device=device), last].cpu().numpy()
    return out


class _Validation:
    """Held-out next items of some users, for a hit-rate estimate."""

    def __init__(self, users: np.ndarray, history: list[np.ndarray], truth: list[np.ndarray]
                 ) -> None:
        self.users, self.history, self.truth = users, history, truth

    def hit_rate(self, net: SequenceNet, table: torch.Tensor, c: UserEncoderConfig,
                 device: torch.device) -> float:
        """Share of users with a held-out item in the top ``eval_k`` unseen items."""
        net.eval()
        with torch.no_grad():
            users = torch.from_numpy(_encode(net, table, self.history, c, device)).to(device)
            scores = users @ net.items(table[:-1]).T
            for row, seen in enumerate(self.history):
                scores[row, torch.from_numpy(seen).to(device)] = -torch.inf
            top = scores.topk(min(c.eval_k, scores.shape[1]), dim=1).indices.cpu().numpy()
        net.train()
        hits = [np.isin(top[row], truth).any() for row, truth in enumerate(self.truth)]
        return float(np.mean(hits))


def _early_stopping(data: InteractionData, sequences: list[np.ndarray], options: TrainOptions,
                    c: UserEncoderConfig, gen: torch.Generator
                    ) -> tuple[list[np.ndarray], _Validation | None]:
    """Training sequences and the early-stopping check ``c.early_stopping`` asks for."""
    if c.early_stopping == "none":
        return sequences, None
    if c.early_stopping == "validation":
        return sequences, _validation(data, options, c, gen)
    users = np.flatnonzero([len(s) >= 3 for s in sequences])
    if len(users) > c.eval_users:
        pick = torch.randperm(len(users), generator=gen)[:c.eval_users].numpy()
        users = np.sort(users[pick])
    if not len(users):
        return sequences, None
    kept = list(sequences)
    for u in users:
        kept[u] = sequences[u][:-1]
    return kept, _Validation(users, [kept[u] for u in users],
                             [sequences[u][-1:] for u in users])


def _validation(data: InteractionData, options: TrainOptions, c: UserEncoderConfig,
                gen: torch.Generator) -> _Validation | None:
    """Pick validation users (with history and held-out items), at most ``eval_users``."""
    held = options.validation
    if held is None:
        return None
    if held.users != data.users or held.items != data.items:
        raise ValueError("validation data must share the training vocabularies")
    counts = np.diff(held.matrix.indptr)
    users = np.flatnonzero((counts > 0) & (np.diff(data.matrix.indptr) > 0))
    if len(users) > c.eval_users:
        pick = torch.randperm(len(users), generator=gen)[:c.eval_users].numpy()
        users = np.sort(users[pick])
    if not len(users):
        return None
    return _Validation(users, [data.sequence(u) for u in users],
                       [held.matrix.indices[held.matrix.indptr[u]:held.matrix.indptr[u + 1]]
                        for u in users])


class _Trainer:
    """Sampled-softmax next-item training with early stopping on validation hit rate."""

    def __init__(self, net: SequenceNet, table: torch.Tensor, c: UserEncoderConfig,
                 gen: torch.Generator, warm: np.ndarray) -> None:
        self.net, self.table, self.c, self.gen = net, table, c, gen
        self.warm = torch.from_numpy(np.flatnonzero(warm))
        self.optimiser = torch.optim.Adam(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def fit(self, sequences: list[np.ndarray], validation: _Validation | None,
            device: torch.device) -> int:
        """Train; return the number of epochs run."""
        c = self.c
        cut = [w for s in sequences for w in windows(s, c.max_len)]
        if not cut or not len(self.warm):
            return 0
        index, _ = pad(cut, c.max_len + 1, len(self.table) - 1)
        index = torch.from_numpy(index)
        best, best_state, stale, epoch = -1.0, None, 0, 0
        for epoch in range(1, c.epochs + 1):
            self.net.train()
            drawn = torch.randperm(len(index), generator=self.gen)[:c.max_windows]
            for batch in drawn.split(c.batch_size):
                self._step(index[batch].to(device), device)
            if validation is None:
                continue
            hit = validation.hit_rate(self.net, self.table, c, device)
            log.debug("UserEncoder epoch %d: validation hit@%d %.4f", epoch, c.eval_k, hit)
            if hit > best:
                best, best_state, stale = hit, copy.deepcopy(self.net.state_dict()), 0
            else:
                stale += 1
                if stale >= c.patience:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        return epoch

    def _step(self, window: torch.Tensor, device: torch.device) -> None:
        pad_index = len(self.table) - 1
        # Map each distinct item once (a batch repeats items), then spread by index.
        unique, inverse = torch.unique(window, return_inverse=True)
        embedded = self.table[unique]
        mapped_in = self.net.input_map(embedded)[inverse]
        mapped_out = self.net.items(embedded)[inverse]
        mask = window[:, 1:] != pad_index
        states = self.net.run(mapped_in[:, :-1])[mask]
        positives = window[:, 1:][mask]
        pick = torch.randint(len(self.warm), (self.c.negatives,), generator=self.gen)
        negatives = self.warm[pick].to(device)
        pos_logit = (states * mapped_out[:, 1:][mask]).sum(dim=1, keepdim=True)
        neg_logit = states @ self.net.items(self.table[negatives]).T
        neg_logit = neg_logit.masked_fill(positives[:, None] == negatives[None, :], -torch.inf)
        logits = torch.cat([pos_logit, neg_logit], dim=1)
        loss = nn.functional.cross_entropy(
            logits, torch.zeros(len(logits), dtype=torch.long, device=device))
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
