"""LMGraph: language-model item vectors mapped into a CF space and propagated over the graph.

The design is AlphaRec's (Sheng et al., "Language Representations Can be What Recommenders
Need", ICLR 2025):

- every item starts from its frozen text embedding, every user from the mean of their
  items' text embeddings; one MLP maps both into a ``dim``-wide CF space;
- LightGCN propagation over the user-item graph (symmetric degree normalisation,
  ``layers`` hops, the mean of all hops is the final vector);
- InfoNCE over cosine similarities with temperature ``tau``: each training pair against
  ``negatives`` sampled warm items (shared by the step's pairs).

Nothing is learned per user or per item, only the MLP: a new item is scored from its text,
and a new user from the items they touched (fold-in: their mapped mean embedding and one hop
per layer over the stored item layers), without retraining. An item with no edges does not
propagate: alone, its final vector would be its mapped text, on another scale than the warm
items' mean of hops, which carry their users' directions (cosine to a user is then
systematically lower for every cold item, so cold items rank below warm ones). So each hop of
such an item is the mean of that hop over its ``cold_neighbours`` nearest warm items by mapped
text, the hops it would have if it were liked by the users of the warm items it reads like.
Early stopping is on a holdout carved from the training data (``recsys_core.deep.holdout``);
each epoch draws at most ``max_edges`` pairs.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from recsys_core.cf.warm import warm_items
from recsys_core.data.interactions import InteractionData
from recsys_core.deep.holdout import (
    EarlyStopping,
    Holdout,
    RefitConfig,
    carve,
    ordered_sequences,
    train_epochs,
)
from recsys_core.deep.layers import make_mlp
from recsys_core.deep.torch_utils import (
    Precision,
    matmul_dtype,
    require_embeddings,
    resolve_device,
    seeded,
    torch_threads,
    unit_rows,
)
from recsys_core.evaluation.ranking import top_k
from recsys_core.scoring import History, Scorer, TrainOptions

log = logging.getLogger(__name__)


class LMGraphConfig(RefitConfig):
    """Network and training settings (AlphaRec's published defaults where they exist).

    A refit started from a trained network stops as ``RefitConfig`` says.

    Args:
        dim: width of the CF space.
        hidden: hidden width of the MLP.
        layers: propagation hops.
        tau: InfoNCE temperature.
        negatives: negatives sampled per step, shared by the step's pairs (AlphaRec draws
            256 per pair; one shared draw is a matrix product instead of a gather).
        batch_size: training pairs per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        epochs: upper bound on epochs.
        patience: epochs without holdout improvement before stopping.
        eval_users: users in the holdout (0: no early stopping, every epoch runs).
        eval_k: cut-off of the holdout NDCG.
        max_edges: training pairs drawn per epoch (all of them when there are fewer).
        cold_neighbours: warm items, nearest by mapped text, whose hops an item with no
            edges takes (their mean).
        precision: the type of the MLP's matrix products while training (the most of a
            step's cost; ``torch_utils.matmul_dtype``: ``auto`` is bfloat16 where the device
            multiplies it in hardware). The propagation, the loss, the holdout checks and the
            trained vectors are float32 either way.
    """

    dim: int = Field(64, gt=0)
    hidden: int = Field(512, gt=0)
    layers: int = Field(2, ge=0)
    tau: float = Field(0.15, gt=0)
    negatives: int = Field(1024, gt=0)
    batch_size: int = Field(4096, gt=0)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(100, gt=0)
    patience: int = Field(5, gt=0)
    eval_users: int = Field(2000, ge=0)
    eval_k: int = Field(10, gt=0)
    max_edges: int = Field(500_000, gt=0)
    cold_neighbours: int = Field(10, gt=0)
    precision: Precision = "auto"


class LMGraph(Scorer[LMGraphConfig]):
    """Cosine between propagated user and item vectors.

    Users with no training interactions score NaN.

    Args:
        config: settings (defaults when ``None``).

    Attributes:
        mlp: the trained map, on CPU, in eval mode.
        item_layers: float32 (layers + 1, n_items, dim) every hop's item vectors.
        item_degree: training users per item.
        item_vectors: float32 (n_items, dim) unit final item vectors.
        user_vectors: float32 (n_users, dim) unit final user vectors (zero: no history).
        best_epoch: the epoch whose map was kept (the last one run without a holdout).
    """

    name = "graph"
    mlp: nn.Sequential
    item_layers: np.ndarray
    item_degree: np.ndarray
    item_vectors: np.ndarray
    user_vectors: np.ndarray
    text: np.ndarray
    best_epoch: int

    def __init__(self, config: LMGraphConfig | None = None) -> None:
        super().__init__(config or LMGraphConfig())
        self._start: tuple[dict[str, torch.Tensor], int | None] | None = None

    def warm_start(self, previous: Scorer) -> bool:
        """Start the next ``train`` from ``previous``'s network (see ``Scorer.warm_start``)."""
        if not isinstance(previous, LMGraph) or not previous.is_trained():
            return False
        self._start = (previous.mlp.state_dict(),
                       getattr(previous, "best_epoch", None))  # absent from older pickles
        return True

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        c = self.config
        self.text = require_embeddings(data.item_embeddings, self.name)
        device = resolve_device(options.device)
        binary = (sp.csr_matrix(data.matrix) > 0).astype(np.float32).tocsr()
        start = time.perf_counter()
        with torch_threads(options), seeded(options.seed, device) as gen:
            sequences = ordered_sequences(data, gen)
            kept, holdout = (carve(sequences, c.eval_users, gen) if c.eval_users
                             else (sequences, None))
            graph = _Graph(_matrix(kept, binary.shape), self.text, device)
            self.mlp = make_mlp(self.text.shape[1], c.dim, c.hidden, 1, 0.0, nn.LeakyReLU)
            initial, self._start = self._start, None
            epochs, patience = c.epochs, c.patience
            if initial is not None:
                self.mlp.load_state_dict(initial[0])
                epochs, patience = c.refit_budget(epochs, initial[1])
            self.mlp = self.mlp.to(device)
            run, self.best_epoch = self._train(graph, warm_items(binary), holdout, gen, device,
                                               epochs, patience)
            self.mlp.eval()
            with torch.no_grad():  # final vectors over the whole graph, holdout included
                full = _Graph(binary, self.text, device)
                users, layers = full.propagate(self.mlp, c.layers)
            self.item_degree = np.asarray(binary.sum(axis=0)).ravel()
            self.item_layers = _borrow_hops(layers.cpu().numpy(), self.item_degree > 0,
                                            c.cold_neighbours)
            self.item_vectors = unit_rows(self.item_layers.mean(axis=0))
            self.user_vectors = unit_rows(users.cpu().numpy())
        self.mlp = self.mlp.cpu()
        log.info("LMGraph: %d epochs of %d (best %d) over %d pairs in %.2fs", run, epochs,
                 self.best_epoch, binary.nnz, time.perf_counter() - start)

    def _train(self, graph: _Graph, warm: np.ndarray, holdout: Holdout | None,
               gen: torch.Generator, device: torch.device, epochs: int, patience: int
               ) -> tuple[int, int]:
        """Train the map; return the number of epochs run and that of the epoch kept."""
        c = self.config
        dtype = matmul_dtype(c.precision, device)
        coo = graph.matrix.tocoo()
        pairs = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
        warm_index = torch.from_numpy(np.flatnonzero(warm))
        optimiser = torch.optim.Adam(self.mlp.parameters(), lr=c.lr, weight_decay=c.weight_decay)

        def run_epoch(epoch: int) -> None:
            self.mlp.train()
            drawn = torch.randperm(pairs.shape[1], generator=gen)[:c.max_edges]
            for batch in drawn.split(c.batch_size):
                users, layers = graph.propagate(self.mlp, c.layers, dtype)
                u, i = pairs[:, batch].to(device)
                neg = warm_index[torch.randint(len(warm_index), (c.negatives,),
                                               generator=gen)].to(device)
                loss = _info_nce(users[u], layers.mean(dim=0), i, neg, c.tau)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()

        def check(holdout: Holdout) -> float:
            self.mlp.eval()
            with torch.no_grad():
                users, layers = graph.propagate(self.mlp, c.layers)
                u = nn.functional.normalize(users[torch.from_numpy(holdout.users).to(device)],
                                            dim=1)
                value = holdout.ndcg(u @ nn.functional.normalize(layers.mean(dim=0), dim=1).T,
                                     c.eval_k)
            return value

        return train_epochs(epochs, run_epoch,
                            None if holdout is None else (lambda: check(holdout)),
                            EarlyStopping(self.mlp, patience))

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        users = self.user_vectors[user_index]
        scores = users @ self.item_vectors.T
        scores[~np.any(users != 0, axis=1)] = np.nan
        return scores

    def _fold_in(self, history: History) -> np.ndarray:
        binary = (history.matrix > 0).astype(np.float32)
        degree = np.asarray(binary.sum(axis=1)).ravel()
        mean_text = (binary @ self.text) / np.maximum(degree, 1)[:, None]
        with torch.no_grad():
            hops = [self.mlp(torch.from_numpy(mean_text.astype(np.float32))).numpy()]
        # One hop per layer from the stored item layers; the new user adds one to each
        # item's degree, as if the graph had held them.
        norm = sp.diags(1.0 / np.sqrt(np.maximum(degree, 1))) @ binary @ sp.diags(
            1.0 / np.sqrt(self.item_degree + 1.0))
        hops += [norm @ self.item_layers[k] for k in range(len(self.item_layers) - 1)]
        users = unit_rows(np.mean(hops, axis=0))
        scores = users @ self.item_vectors.T
        scores[degree == 0] = np.nan
        return scores


class _Graph:
    """The normalised user-item adjacency and the text inputs of one training graph."""

    def __init__(self, matrix: sp.csr_matrix, text: np.ndarray, device: torch.device) -> None:
        self.matrix = matrix
        n_users, n_items = matrix.shape
        user_degree = np.asarray(matrix.sum(axis=1)).ravel()
        item_degree = np.asarray(matrix.sum(axis=0)).ravel()
        self.text = torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32)).to(device)
        self.mean = _sparse(sp.diags(1.0 / np.maximum(user_degree, 1)) @ matrix, device)
        norm = (sp.diags(1.0 / np.sqrt(np.maximum(user_degree, 1))) @ matrix
                @ sp.diags(1.0 / np.sqrt(np.maximum(item_degree, 1))))
        self.adjacency = _sparse(sp.bmat([[None, norm], [norm.T, None]]), device)
        self.n_users = n_users

    def propagate(self, mlp: nn.Sequential, layers: int, dtype: torch.dtype = torch.float32
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean-of-hops user vectors (n_users, dim) and every hop's item vectors, float32.

        A user's input is the mean of their items' text embeddings. The MLP's first layer is
        affine, so it maps that mean to the mean of the items' first-layer outputs: one
        sparse product over the user's items instead of a dense pass per user.

        Args:
            mlp: the map from text into the CF space (``make_mlp``: Linear first and last).
            layers: hops.
            dtype: the type of the MLP's layers (inputs, weights and outputs; the sparse
                products are float32). Cast explicitly: under autocast, the sparse
                products' backward meets bfloat16 gradients, which it rejects.
        """
        first = _linear(mlp[0], self.text, dtype)
        mean = torch.sparse.mm(self.mean, first.float()).to(dtype)
        hop = _linear(mlp[-1], mlp[1:-1](torch.cat([mean, first])), dtype).float()
        hops = [hop]
        for _ in range(layers):
            hop = torch.sparse.mm(self.adjacency, hop)
            hops.append(hop)
        stacked = torch.stack(hops)
        return stacked[:, :self.n_users].mean(dim=0), stacked[:, self.n_users:]


def _linear(layer: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``layer(x)`` (an ``nn.Linear``) with its inputs, weights and output in ``dtype``."""
    assert isinstance(layer, nn.Linear)
    return nn.functional.linear(x.to(dtype), layer.weight.to(dtype), layer.bias.to(dtype))


def _sparse(matrix: sp.csr_matrix | sp.coo_matrix, device: torch.device) -> torch.Tensor:
    coo = matrix.tocoo()
    index = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)),
                                   coo.shape, check_invariants=False).coalesce().to(device)


def _info_nce(users: torch.Tensor, items: torch.Tensor, positives: torch.Tensor,
              negatives: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE over cosine similarities, the batch's pairs against shared negatives.

    Args:
        users: (B, d) the pairs' user vectors.
        items: (n_items, d) every item's vector.
        positives: (B,) the pairs' items.
        negatives: (N,) sampled items, shared by the batch (a pair's own item among them
            is masked out).
        tau: temperature.
    """
    users = nn.functional.normalize(users, dim=-1)
    positive = (users * nn.functional.normalize(items[positives], dim=-1)).sum(-1, keepdim=True)
    negative = users @ nn.functional.normalize(items[negatives], dim=-1).T
    negative = negative.masked_fill(negatives[None, :] == positives[:, None], -torch.inf)
    logits = torch.cat([positive, negative], dim=1) / tau
    return nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long,
                                                           device=logits.device))


def _borrow_hops(layers: np.ndarray, has_edges: np.ndarray, neighbours: int,
                 chunk: int = 1024) -> np.ndarray:
    """``layers`` with the hops of items without edges borrowed from warm items.

    Every hop past the first of an edgeless item becomes the mean of that hop over its
    ``neighbours`` nearest items with edges (cosine of hop 0, the mapped text).

    Args:
        layers: float32 (hops + 1, n_items, dim), hop 0 the mapped text.
        has_edges: bool (n_items,) items with training edges.
        neighbours: warm items averaged per edgeless item.
        chunk: edgeless items per similarity block (bounds the memory).
    """
    cold, warm = np.flatnonzero(~has_edges), np.flatnonzero(has_edges)
    if len(layers) < 2 or not len(cold) or not len(warm):
        return layers
    layers = layers.copy()
    base = unit_rows(layers[0])
    warm_base = base[warm].T
    k = min(neighbours, len(warm))
    for start in range(0, len(cold), chunk):
        rows = cold[start:start + chunk]
        nearest = warm[top_k(base[rows] @ warm_base, k)]
        layers[1:, rows] = layers[1:][:, nearest].mean(axis=2)
    return layers


def _matrix(sequences: list[np.ndarray], shape: tuple[int, int]) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    cols = np.concatenate(sequences) if sequences else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=shape)
