"""ContentProjector: an MLP from item text embeddings into ALS's item-factor space.

Trained on warm items (ALS factors are the targets), it gives items with no interactions a
CF-like vector, so cold items get scores on the same scale as ALS scores of warm ones.
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

from recsys_core.cf.implicit_models import ALS, ALSConfig
from recsys_core.cf.warm import mask_cold
from recsys_core.data.interactions import InteractionData
from recsys_core.deep.layers import make_mlp
from recsys_core.deep.torch_utils import (
    require_embeddings,
    resolve_device,
    seeded,
    torch_threads,
)
from recsys_core.scoring import History, Scorer, ScorerConfig, TrainOptions

log = logging.getLogger(__name__)


class ContentProjectorConfig(ScorerConfig):
    """The projector's ALS, network and training settings.

    Args:
        als: the ALS whose item factors are the targets (and whose user factors score).
        hidden: width of the hidden layers.
        layers: number of hidden layers.
        dropout: dropout after each hidden layer.
        loss: ``mse`` on scaled factors, or ``cosine`` (direction only; outputs are then
            rescaled to the mean warm-factor norm).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: items per step.
        max_epochs: upper bound on epochs.
        epoch_items: warm items drawn per epoch (all of them when there are fewer), so an
            epoch's cost stops growing with the catalogue.
        patience: epochs without held-out improvement before stopping.
        holdout: fraction of warm items held out for early stopping.
        warm_items: factors warm items score with: their ALS factors (``als``), the
            projection (``projected``) or ``blend * als + (1 - blend) * projected``.
            Cold items always use the projection.
        blend: ALS share in the ``blend`` mode.
    """

    als: ALSConfig = ALSConfig()
    hidden: int = Field(256, gt=0)
    layers: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    loss: Literal["mse", "cosine"] = "mse"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    batch_size: int = Field(512, gt=0)
    max_epochs: int = Field(100, gt=0)
    epoch_items: int = Field(50_000, gt=0)
    patience: int = Field(5, gt=0)
    holdout: float = Field(0.1, gt=0, lt=1)
    warm_items: Literal["als", "projected", "blend"] = "als"
    blend: float = Field(0.5, ge=0, le=1)


class ContentProjector(Scorer[ContentProjectorConfig]):
    """ALS user factors against item factors that exist for every item with text.

    Trains its own ALS from ``config.als``, unless a trained ``als`` is passed in to avoid
    retraining (its config must equal ``config.als`` and its vocabularies the data's, so the
    config still describes the model).

    Args:
        config: settings (defaults when ``None``).
        als: an optional ALS already trained on the same data.

    Attributes:
        als: the ALS scorer (numpy factors).
        mlp: the projection network, on CPU, in eval mode.
        projected: float32 (n_items, f) projected factors of every item.
        item_factors: float32 (n_items, f) the factors items are scored with.
    """

    name = "projector"

    def __init__(self, config: ContentProjectorConfig | None = None, als: ALS | None = None
                 ) -> None:
        super().__init__(config or ContentProjectorConfig())
        if als is not None and als.config != self.config.als:
            raise ValueError("the given ALS was trained with a different config than "
                             "ContentProjectorConfig.als")
        self.als = als
        self.mlp: nn.Sequential | None = None
        self.scale: float = 1.0
        self.norm: float = 1.0
        self.projected: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        embeddings = require_embeddings(data.item_embeddings, self.name)
        als = self._trained_als(data, options)
        warm = als.warm_items
        if warm.sum() < 2:
            raise ValueError("ContentProjector needs at least two items with interactions")
        start = time.perf_counter()
        targets = als.item_factors[warm]
        self.scale = float(np.sqrt(np.mean(targets**2))) or 1.0
        self.norm = float(np.linalg.norm(targets, axis=1).mean()) or 1.0
        self.mlp = self._train_mlp(embeddings[warm], targets / self.scale, options)
        self.projected = self.project(embeddings)
        self.item_factors = self._blend(als.item_factors, self.projected, warm)
        log.info("ContentProjector: %d warm items -> %d factors in %.2fs", int(warm.sum()),
                 targets.shape[1], time.perf_counter() - start)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Map text embeddings to ALS item factors with the trained network.

        Args:
            embeddings: float (n, d) item embeddings (normalised here).
        """
        if self.mlp is None:
            raise RuntimeError("ContentProjector is not trained")
        x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        norms = x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        with torch.no_grad():
            out = self.mlp(x / norms).numpy()
        if self.config.loss == "cosine":
            out *= self.norm / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        else:
            out *= self.scale
        return out.astype(np.float32)

    def _fitted(self) -> tuple[ALS, np.ndarray]:
        """The ALS model and the projected item factors (both set by ``_fit``)."""
        assert self.als is not None and self.item_factors is not None
        return self.als, self.item_factors

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        als, items = self._fitted()
        scores = als.user_factors[user_index] @ items.T
        return mask_cold(scores, als.warm_users[user_index])

    def _fold_in(self, history: History) -> np.ndarray:
        # ALS's user step, reading history items from this model's factors: a cold item in
        # the history counts through its projected vector.
        als, items = self._fitted()
        factors = als.fold_in_factors(history.matrix, items)
        scores = factors @ items.T
        return mask_cold(scores, np.diff(history.matrix.indptr) > 0)

    def _trained_als(self, data: InteractionData, options: TrainOptions) -> ALS:
        if self.als is None or not self.als.is_trained():
            self.als = ALS(self.config.als).train(data, options)
        elif self.als.users != data.users or self.als.items != data.items:
            raise ValueError("the given ALS was trained over other vocabularies")
        return self.als

    def _blend(self, als: np.ndarray, projected: np.ndarray, warm: np.ndarray) -> np.ndarray:
        mode, share = self.config.warm_items, self.config.blend
        factors = projected.copy()
        if mode == "als":
            factors[warm] = als[warm]
        elif mode == "blend":
            factors[warm] = share * als[warm] + (1 - share) * projected[warm]
        return factors

    def _train_mlp(self, inputs: np.ndarray, targets: np.ndarray, options: TrainOptions
                   ) -> nn.Sequential:
        c = self.config
        device = resolve_device(options.device)
        with torch_threads(options), seeded(options.seed, device) as gen:
            mlp = make_mlp(inputs.shape[1], targets.shape[1], c.hidden, c.layers, c.dropout)
            mlp.to(device)
            x = torch.from_numpy(inputs).to(device)
            y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)).to(device)
            order = torch.randperm(len(x), generator=gen).to(device)
            n_val = max(1, round(c.holdout * len(x)))
            val, train = order[:n_val], order[n_val:]
            optimiser = torch.optim.Adam(mlp.parameters(), lr=c.lr, weight_decay=c.weight_decay)
            best, best_state, stale, epochs = float("inf"), copy.deepcopy(mlp.state_dict()), 0, 0
            while epochs < c.max_epochs:
                epochs += 1
                mlp.train()
                perm = train[torch.randperm(len(train), generator=gen)[:c.epoch_items]
                             .to(device)]
                for batch in perm.split(c.batch_size):
                    optimiser.zero_grad()
                    self._loss(mlp(x[batch]), y[batch]).backward()
                    optimiser.step()
                mlp.eval()
                with torch.no_grad():
                    val_loss = float(self._loss(mlp(x[val]), y[val]))
                if val_loss < best - 1e-6:
                    best, best_state, stale = val_loss, copy.deepcopy(mlp.state_dict()), 0
                else:
                    stale += 1
                    if stale >= c.patience:
                        break
            mlp.load_state_dict(best_state)
        log.info("projector MLP: %d epochs, held-out %s loss %.4f", epochs, c.loss, best)
        return mlp.cpu().eval()

    def _loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "cosine":
            return (1 - nn.functional.cosine_similarity(predicted, target, dim=1)).mean()
        return nn.functional.mse_loss(predicted, target)
