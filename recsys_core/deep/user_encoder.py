"""UserEncoder: a SASRec-class causal Transformer over each user's time-ordered items.

Design (Kang & McAuley's SASRec, trained as Klenitskiy & Vasilev's SASRec+ and Petrov &
Macdonald's gSASRec recommend, with text for cold items):

- An item is its learned ID embedding plus an MLP of its frozen language-model text
  embedding. During training each item's ID part is dropped with probability
  ``id_dropout`` (the same draw for the step's inputs and outputs), so the text part alone
  learns to place an item; an item without training interactions (cold) is scored from its
  text alone and lands in the same space.
- Input: item vectors plus learned positional embeddings, layer norm, dropout, then
  ``blocks`` post-norm Transformer blocks with causal self-attention. The state at every
  position predicts the next item (the output item vectors are the input ones: tied).
- Loss: softmax cross-entropy over every warm item at every position (full CE: SASRec with
  CE reaches NDCG@10 0.182 on ML-1M full ranking against 0.134 for the BCE/one-negative
  original), computed in row chunks (``recsys_core.deep.softmax``) so the positions x
  items logits are never held at once. Above ``full_softmax_items`` warm items, a sampled
  softmax: ``negatives`` items drawn per step by popularity, with the logQ correction (Yi et
  al., RecSys 2019) so the estimate stays unbiased towards popular items. Cold items are
  never in the softmax, so they are not taught to rank low.
- Early stopping on NDCG of each of up to ``eval_users`` users' latest training item, held
  out of their training sequence (``recsys_core.deep.holdout``); each epoch draws at most
  ``max_windows`` windows, so its cost stops growing with the data.

A user's vector is the state after their latest ``max_len`` items; fold-in of a new user is
the same single forward pass over their recent items. ``read`` gives a copy that reads users
further back (a recency-weighted mean of the states after every item; ``encode``): the fusion
tuner chooses between the readouts on its validation carves, since a random holdout asks for
what a user takes anywhere in their history, which the latest state misses.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from recsys_core.cf.warm import warm_items
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep.holdout import (
    EarlyStopping,
    Holdout,
    RefitConfig,
    carve,
    has_ties,
    ordered_sequences,
    shuffle_ties,
    time_blocks,
    train_epochs,
)
from recsys_core.deep.layers import Dropout, make_mlp
from recsys_core.deep.sequences import pad, windows
from recsys_core.deep.softmax import full_softmax_loss
from recsys_core.deep.torch_utils import (
    Precision,
    matmul_dtype,
    require_embeddings,
    resolve_device,
    seeded,
    torch_threads,
)
from recsys_core.scoring import History, Scorer, TrainOptions

log = logging.getLogger(__name__)

RECENCIES = (0.0, 4.0, 16.0, 64.0)
"""The readouts ``UserEncoder.read`` offers (half-lives in items; see ``encode``)."""


class UserEncoderConfig(RefitConfig):
    """Network and training settings (SASRec's published defaults where they exist).

    A refit started from a trained network stops as ``RefitConfig`` says.

    Args:
        dim: width of item, position and user vectors.
        blocks: Transformer blocks.
        heads: attention heads per block.
        dropout: dropout on embeddings, attention and feed-forward layers.
        max_len: items of history a user vector is computed from (and training window).
        text_hidden: hidden width of the text MLP.
        id_dropout: per step, the chance that an item's ID embedding is dropped (text only).
        epochs: upper bound on epochs.
        batch_size: windows per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        full_softmax_items: above this many warm items the loss is a sampled softmax.
        negatives: items sampled per step for the sampled softmax.
        patience: epochs without holdout improvement before stopping.
        smoothing: holdout checks averaged into the value early stopping compares
            (``EarlyStopping``).
        early_stopping: ``holdout`` (each of up to ``eval_users`` users' latest training
            item) or ``none`` (every epoch runs).
        eval_users: users in the holdout.
        eval_k: cut-off of the holdout NDCG.
        max_windows: training windows drawn per epoch (all of them when there are fewer).
        precision: the type of training's matrix products. ``bfloat16``: the network runs
            under bfloat16 autocast, and the full softmax's products read bfloat16 copies
            while its softmax stays float32 (``full_softmax_loss``); ``float32``: exact;
            ``auto``: bfloat16 where the device multiplies it in hardware (CUDA from Ampere
            on; CPUs with AVX512-BF16 or AMX), else float32. Trained vectors, fold-in and
            the holdout checks' scores are float32 either way.
    """

    dim: int = Field(64, gt=0)
    blocks: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    max_len: int = Field(50, ge=1)
    text_hidden: int = Field(256, gt=0)
    id_dropout: float = Field(0.2, ge=0, le=1)
    epochs: int = Field(100, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    full_softmax_items: int = Field(50_000, gt=0)
    negatives: int = Field(4096, gt=0)
    patience: int = Field(5, gt=0)
    smoothing: int = Field(3, ge=1)
    early_stopping: Literal["holdout", "none"] = "holdout"
    eval_users: int = Field(2000, gt=0)
    eval_k: int = Field(10, gt=0)
    max_windows: int = Field(20_000, gt=0)
    precision: Precision = "auto"

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> UserEncoderConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads}): "
                             "each head attends over dim / heads of the item vector")
        return self


class SequenceNet(nn.Module):
    """Item vectors from IDs and text; a causal Transformer over them.

    Args:
        n_items: catalogue size (the ID table has one more row: padding).
        dim_text: text embedding width.
        c: the settings.
    """

    def __init__(self, n_items: int, dim_text: int, c: UserEncoderConfig) -> None:
        super().__init__()
        self.ids = nn.Embedding(n_items, c.dim)
        nn.init.normal_(self.ids.weight, std=0.02)
        self.text = make_mlp(dim_text, c.dim, c.text_hidden, 1, 0.0)
        self.positions = nn.Embedding(c.max_len, c.dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.norm = nn.LayerNorm(c.dim)
        self.dropout = Dropout(c.dropout)
        block = nn.TransformerEncoderLayer(c.dim, c.heads, 4 * c.dim, c.dropout,
                                           activation="gelu", batch_first=True)
        self.blocks = nn.TransformerEncoder(block, c.blocks, enable_nested_tensor=False)
        for layer in self.blocks.layers:  # the attention weights' dropout stays torch's
            layer.dropout, layer.dropout1, layer.dropout2 = (Dropout(c.dropout)
                                                             for _ in range(3))

    def items(self, text: torch.Tensor, index: torch.Tensor, keep: torch.Tensor
              ) -> torch.Tensor:
        """Vectors of items ``index``: MLP(text) plus the ID embedding where ``keep``.

        Args:
            text: (n, d_text) the items' text embeddings.
            index: (n,) their item indices.
            keep: (n,) 1.0 where the ID embedding is used, 0.0 where dropped (or cold).
        """
        return self.text(text) + self.ids(index) * keep[:, None]

    def states(self, vectors: torch.Tensor) -> torch.Tensor:
        """User states after every step: (B, T, dim) item vectors -> (B, T, dim).

        Args:
            vectors: item vectors in time order, right-padded (causal attention never lets
                a position read the padding after it).
        """
        steps = vectors.shape[1]
        x = self.dropout(self.norm(vectors + self.positions.weight[:steps]))
        causal = nn.Transformer.generate_square_subsequent_mask(steps, device=x.device)
        return self.blocks(x, mask=causal, is_causal=True)


class UserEncoder(Scorer[UserEncoderConfig]):
    """Sequential source: ``score(u, i) = state(u) . item(i)``.

    Users with no training interactions score NaN.

    Args:
        config: settings (defaults when ``None``).

    Attributes:
        net: the trained network, on CPU, in eval mode.
        item_vectors: float32 (n_items, dim); cold items from their text alone.
        user_vectors: float32 (n_users, dim), read with ``recency``; zero rows for users
            without history.
        sequences: per user, the training items oldest first, as the network read them.
        recency: the readout of ``user_vectors`` and fold-in (``encode``); 0 after training.
        best_epoch: the epoch whose network was kept (the last one run without a holdout).
    """

    name = "user_encoder"
    net: SequenceNet
    item_vectors: np.ndarray
    user_vectors: np.ndarray
    warm_users: np.ndarray
    best_epoch: int
    sequences: list[np.ndarray]
    recency: float = 0.0  # the readout (``read``); class default for older pickles

    def __init__(self, config: UserEncoderConfig | None = None) -> None:
        super().__init__(config or UserEncoderConfig())
        self._start: tuple[Vocabulary, dict[str, torch.Tensor], int | None] | None = None

    def warm_start(self, previous: Scorer) -> bool:
        """Start the next ``train`` from ``previous``'s network (see ``Scorer.warm_start``)."""
        if not isinstance(previous, UserEncoder) or not previous.is_trained():
            return False
        self._start = (previous.vocabularies()[1], previous.net.state_dict(),
                       getattr(previous, "best_epoch", None))  # absent from older pickles
        return True

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        c = self.config
        text = require_embeddings(data.item_embeddings, self.name)
        device = resolve_device(options.device)
        warm = warm_items(data.matrix)
        start = time.perf_counter()
        with torch_threads(options), seeded(options.seed, device) as gen:
            blocks = time_blocks(data)
            sequences = ordered_sequences(data, gen, blocks)
            self.warm_users = np.array([len(s) > 0 for s in sequences], dtype=bool)
            net = SequenceNet(data.n_items, text.shape[1], c)
            initial, self._start = self._start, None
            epochs, patience = c.epochs, c.patience
            if initial is not None and initial[0] == data.items:
                net.load_state_dict(initial[1])
                epochs, patience = c.refit_budget(epochs, initial[2])
            net = net.to(device)
            trainer = _Trainer(net, torch.from_numpy(text).to(device), warm, c, gen, device)
            train_sequences, holdout = ((sequences, None) if c.early_stopping == "none"
                                        else carve(sequences, c.eval_users, gen))
            run, self.best_epoch = trainer.fit(train_sequences, holdout, blocks, epochs,
                                               patience)
            net.eval()
            with torch.no_grad():
                items = trainer.item_table()
                self.item_vectors = items.cpu().numpy()
                self.user_vectors = encode(net, items, sequences, c.max_len).cpu().numpy()
        self.sequences, self.recency = sequences, 0.0
        self.net = net.cpu()
        log.info("UserEncoder: %d epochs of %d (best %d; %s softmax) over %d users in %.2fs",
                 run, epochs, self.best_epoch, "full" if trainer.full else "sampled", data.n_users,
                 time.perf_counter() - start)

    def readouts(self) -> tuple[float, ...]:
        """Half-lives in items (``encode``'s ``recency``) users can be read with (``read``).

        0, the state after the latest item, is what ``train`` reads; the plain mean of every
        state is ``UserHistory``, a source of its own. Empty for pickles from before
        ``sequences`` was kept.
        """
        return RECENCIES if hasattr(self, "sequences") else ()

    def read(self, readout: float) -> UserEncoder:
        """A copy whose user vectors (and fold-in) read the network with recency ``readout``.

        Itself when it already reads them so (nothing to encode again).

        Raises:
            ValueError: ``readout`` is not one of ``readouts()``.
        """
        if readout not in self.readouts():
            raise ValueError(f"user_encoder has no readout {readout!r}: {self.readouts()}")
        if readout == self.recency:
            return self
        clone = copy.copy(self)
        clone.recency = readout
        with torch.no_grad():
            clone.user_vectors = encode(self.net, torch.from_numpy(self.item_vectors),
                                        self.sequences, self.config.max_len, readout).numpy()
        return clone

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        scores = self.user_vectors[user_index] @ self.item_vectors.T
        scores[~self.warm_users[user_index]] = np.nan
        return scores

    def _fold_in(self, history: History) -> np.ndarray:
        return fold_in_scores(self.net, self.item_vectors, list(history.sequences),
                              self.config.max_len, self.recency)


def fold_in_scores(net: SequenceNet, item_vectors: np.ndarray, sequences: list[np.ndarray],
                   max_len: int, recency: float) -> np.ndarray:
    """Scores of pseudo-users read from their sequences (``encode``); NaN rows for empty ones.

    Args:
        net: the network (in eval mode).
        item_vectors: float32 (n_items, dim) item vectors.
        sequences: per pseudo-user, item indices oldest first.
        max_len: history length one forward pass reads.
        recency: see ``encode``.
    """
    with torch.no_grad():
        users = encode(net, torch.from_numpy(item_vectors), sequences, max_len, recency)
    scores = users.numpy() @ item_vectors.T
    scores[[len(s) == 0 for s in sequences]] = np.nan
    return scores


def encode(net: SequenceNet, items: torch.Tensor, sequences: list[np.ndarray], max_len: int,
           recency: float = 0.0, batch: int = 512) -> torch.Tensor:
    """User vectors from their sequences; zero for empty ones.

    Args:
        net: the network (in eval mode).
        items: (n_items, dim) item vectors.
        sequences: item indices, oldest first.
        max_len: history length one forward pass reads.
        recency: how far back a user vector reads, as a half-life in items. ``0``: the
            state after the latest item (over the latest ``max_len``), what the network is
            trained to make predict the next item. ``h > 0``: a mean of the states after
            every item of the whole history (read in consecutive chunks of ``max_len``), the
            state ``age`` items before the latest weighted ``2 ** (-age / h)``; ``inf``: the
            plain mean, which predicts what the user takes at any point of their history.
        batch: chunks per forward pass.
    """
    out = torch.zeros((len(sequences), items.shape[1]), device=items.device)
    table = torch.cat([items, torch.zeros_like(items[:1])])  # padding row
    if recency == 0:
        owners = [u for u, s in enumerate(sequences) if len(s)]
        chunks = [sequences[u][-max_len:] for u in owners]
    else:  # consecutive chunks, each with its positions' weights by age in the history
        owners, chunks, weights = [], [], []
        totals = np.zeros(len(sequences))
        for u, s in enumerate(sequences):
            weight = np.exp2(-np.arange(len(s) - 1, -1, -1) / recency)
            totals[u] = weight.sum()
            for i in range(0, len(s), max_len):
                owners.append(u)
                chunks.append(s[i:i + max_len])
                weights.append(weight[i:i + max_len])
    # Batches of similar lengths, each padded to its longest: short histories would
    # otherwise be padded to the longest of a random batch (about max_len).
    order = np.argsort([len(c) for c in chunks], kind="stable")
    chunks = [chunks[i] for i in order]
    owner = torch.tensor(owners, dtype=torch.long, device=items.device)[
        torch.from_numpy(order).to(items.device)]
    for start in range(0, len(chunks), batch):
        part = chunks[start:start + batch]
        longest = max(len(c) for c in part)
        index, lengths = pad(part, longest, len(items))
        states = net.states(table[torch.from_numpy(index).to(items.device)])
        rows = owner[start:start + batch]
        if recency == 0:
            last = torch.from_numpy(lengths).to(items.device) - 1
            out[rows] = states[torch.arange(len(part), device=items.device), last].to(out.dtype)
        else:  # weighted sums per owner (padding weighs 0); divided by the totals below
            step = np.zeros((len(part), longest), dtype=np.float32)
            for row, i in enumerate(order[start:start + batch]):
                step[row, :len(weights[i])] = weights[i]
            step_t = torch.from_numpy(step).to(items.device)
            out.index_add_(0, rows, (states * step_t[..., None]).sum(dim=1))
    if recency != 0:
        out /= torch.from_numpy(np.maximum(totals, 1e-30)).to(out)[:, None]
    return out


def _length_buckets(drawn: torch.Tensor, lengths: torch.Tensor, size: int,
                    gen: torch.Generator, span: int = 32) -> list[torch.Tensor]:
    """Batches of ``size`` windows of similar length, in random order.

    Windows are sorted by length within runs of ``span`` batches, so a batch is padded to
    nearly its own windows' length (short-history data would otherwise spend most of its
    time on padding), while the batches still mix users from the whole epoch.
    """
    batches: list[torch.Tensor] = []
    for start in range(0, len(drawn), size * span):
        run = drawn[start:start + size * span]
        batches += run[torch.argsort(lengths[run], stable=True)].split(size)
    return [batches[i] for i in torch.randperm(len(batches), generator=gen)]


class _Trainer:
    """Next-item training with full or sampled softmax; early stopping on the holdout."""

    def __init__(self, net: SequenceNet, text: torch.Tensor, warm: np.ndarray,
                 c: UserEncoderConfig, gen: torch.Generator, device: torch.device) -> None:
        self.net, self.text, self.c, self.gen, self.device = net, text, c, gen, device
        self.n_items = len(text)
        self.warm = torch.from_numpy(np.flatnonzero(warm)).to(device)
        self.is_warm = torch.from_numpy(warm.astype(np.float32)).to(device)
        self.full = len(self.warm) <= c.full_softmax_items
        # The full softmax reads every warm item's text each step: gathered once.
        self.warm_text = text[self.warm] if self.full else None
        self.matmul_dtype = matmul_dtype(c.precision, device)
        self.bfloat16 = self.matmul_dtype == torch.bfloat16
        # Position in the softmax of every item (-1: cold, never a target or a negative).
        self.slot = torch.full((self.n_items + 1,), -1, dtype=torch.long, device=device)
        self.slot[self.warm] = torch.arange(len(self.warm), device=device)
        self.all_items = torch.arange(self.n_items, device=device)
        self.optimiser = torch.optim.Adam(net.parameters(), lr=c.lr, betas=(0.9, 0.98),
                                          weight_decay=c.weight_decay)

    def item_table(self, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors of every item: IDs for warm items (where ``keep``), text for all."""
        keep = self.is_warm if keep is None else keep * self.is_warm
        return self.net.items(self.text, self.all_items, keep)

    def fit(self, sequences: list[np.ndarray], holdout: Holdout | None,
            blocks: list[np.ndarray], epochs: int, patience: int) -> tuple[int, int]:
        """Train; return the number of epochs run and that of the epoch kept.

        Args:
            sequences: per user, the training items oldest first.
            holdout: the early-stopping holdout (``None``: every epoch runs).
            blocks: per user, the time block of each item (``time_blocks``): every epoch
                reads the items of a block (same time, or a whole history without times) in
                a new random order, since they have none.
            epochs: upper bound on epochs.
            patience: checks without improvement before stopping.
        """
        c = self.c
        if not any(len(s) > 1 for s in sequences) or not len(self.warm):
            return 0, 0
        counts = torch.bincount(torch.from_numpy(np.concatenate(sequences)),
                                minlength=self.n_items).to(self.device)
        popularity = counts[self.warm].float()
        self.log_q = torch.log(popularity / popularity.sum())
        self.q = self.log_q.exp().cpu()  # sampling weights (the generator is a CPU one)
        index, lengths = self._windows(sequences)
        tied = any(has_ties(b) for b in blocks)

        def run_epoch(epoch: int) -> None:
            nonlocal index, lengths
            self.net.train()
            if epoch > 1 and tied:
                index, lengths = self._windows(shuffle_ties(sequences, blocks, self.gen))
            drawn = torch.randperm(len(index), generator=self.gen)[:c.max_windows]
            for batch in _length_buckets(drawn, lengths, c.batch_size, self.gen):
                longest = int(lengths[batch].max())
                self._step(index[batch, :longest].to(self.device))

        check = None if holdout is None else (lambda: self._holdout_ndcg(holdout))
        return train_epochs(epochs, run_epoch, check,
                            EarlyStopping(self.net, patience, c.smoothing))

    def _windows(self, sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Training windows (padded item indices) and their lengths."""
        cut = [w for s in sequences for w in windows(s, self.c.max_len)]
        padded, sizes = pad(cut, self.c.max_len + 1, self.n_items)
        return torch.from_numpy(padded), torch.from_numpy(sizes)

    def _holdout_ndcg(self, holdout: Holdout) -> float:
        """NDCG of the holdout.

        The network reads the histories in the training's precision (a float32 check was a
        tenth of an epoch on ml-latest-small); the scores are float32, since bfloat16's 8-bit
        mantissa would tie the held-out item with its neighbours.
        """
        self.net.eval()
        with torch.no_grad():
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bfloat16):
                items = self.item_table()
                users = encode(self.net, items, holdout.history, self.c.max_len)
            value = holdout.ndcg(users.float() @ items.float().T, self.c.eval_k)
        self.net.train()
        return value

    def _step(self, window: torch.Tensor) -> None:
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bfloat16):
            loss = self._loss(window)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()

    def _loss(self, window: torch.Tensor) -> torch.Tensor:
        c = self.c
        targets = self.slot[window[:, 1:]]
        mask = targets >= 0
        if self.warm_text is not None:  # the full softmax: every warm item is a candidate
            needed, text = self.warm, self.warm_text  # (windows hold warm items only)
        else:
            negatives = self.warm[torch.multinomial(self.q, c.negatives, replacement=True,
                                                    generator=self.gen).to(self.device)]
            needed = torch.unique(torch.cat([window[window < self.n_items], negatives]))
            text = self.text[needed]
        keep = (torch.rand(len(needed), generator=self.gen) >= c.id_dropout).float()
        vectors = self.net.items(text, needed, keep.to(self.device))
        # Row of each item in ``vectors`` (padding -> the appended zero row).
        row = torch.full((self.n_items + 1,), len(needed), dtype=torch.long, device=self.device)
        row[needed] = torch.arange(len(needed), device=self.device)
        table = torch.cat([vectors, torch.zeros_like(vectors[:1])])
        states = self.net.states(table[row[window[:, :-1]]])[mask]
        targets = targets[mask]
        if self.full:  # ``needed`` is ``warm``: its rows are the softmax slots
            return full_softmax_loss(states, vectors, targets, matmul_dtype=self.matmul_dtype)
        # the sampled softmax: the target against the shared negatives, each logQ-corrected
        items = self.warm[targets]
        positive = (states * vectors[row[items]]).sum(dim=1, keepdim=True)
        negative = states @ vectors[row[negatives]].T
        negative = negative.masked_fill(negatives[None, :] == items[:, None], -torch.inf)
        logits = torch.cat([positive - self.log_q[targets, None],
                            negative - self.log_q[self.slot[negatives]]], dim=1)
        return nn.functional.cross_entropy(logits.float(), torch.zeros(
            len(targets), dtype=torch.long, device=self.device))
