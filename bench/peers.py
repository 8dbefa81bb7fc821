"""Peer models for bench/quality.py, wrapped as recsys_core scorers.

Each peer fits on the same ``InteractionData`` the product's sources see and scores every
user x item from its learned factors, so the one evaluator (full ranking, seen items
excluded) measures peers and product alike.

- ``BiVAEPeer``: cornac's bilateral VAE with Microsoft Recommenders' settings (k=50, encoder
  [100], tanh, Poisson likelihood, 500 epochs, lr 0.001, batch 128); score = theta_u . beta_i.
  cornac binarises the interactions itself. Items without training interactions are unknown
  to cornac and score NaN.
- ``LightFMPeer``: LightFM WARP with item features (identity + title tokens + categories),
  trained on the items that have training interactions (a cold item is no training negative),
  so an item without interactions gets its representation from its features;
  score = p_u . q_i + b_i. With ``identity=False`` items are their features only (LightFM's
  cold-start setting: a cold item's untrained identity vector no longer drags it down).
"""

from __future__ import annotations

import re

import numpy as np
import torch
from pydantic import Field

from recsys_core.data.interactions import InteractionData
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions

_TOKEN = re.compile(r"\w+")  # any script: 639 Last.fm artists have no Latin letter
_NO_FEATURES = "none"
"""The feature of an item with no title token or category (``#####``, ``!!!``): LightFM
cannot normalise an all-zero feature row, and without identity features it would be empty."""


class BiVAEConfig(ScorerConfig):
    k: int = Field(50, gt=0)
    encoder_structure: tuple[int, ...] = (100,)
    act_fn: str = "tanh"
    likelihood: str = "pois"
    n_epochs: int = Field(500, gt=0)
    batch_size: int = Field(128, gt=0)
    learning_rate: float = Field(0.001, gt=0)


class BiVAEPeer(Scorer[BiVAEConfig]):
    name = "bivae"

    def __init__(self, config: BiVAEConfig | None = None) -> None:
        super().__init__(config or BiVAEConfig())
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        import cornac

        coo = data.matrix.tocoo()
        triples = [(str(u), str(i), float(w)) for u, i, w in zip(coo.row, coo.col, coo.data,
                                                                   strict=True)]
        train_set = cornac.data.Dataset.from_uir(triples, seed=options.seed)
        c = self.config
        model = cornac.models.BiVAECF(
            k=c.k, encoder_structure=list(c.encoder_structure), act_fn=c.act_fn,
            likelihood=c.likelihood, n_epochs=c.n_epochs, batch_size=c.batch_size,
            learning_rate=c.learning_rate, seed=options.seed, verbose=False,
            use_gpu=torch.cuda.is_available())
        model.fit(train_set)
        theta = model.bivae.mu_theta.detach().cpu().numpy()
        beta = model.bivae.mu_beta.detach().cpu().numpy()
        self.user_factors = np.full((data.n_users, c.k), np.nan, dtype=np.float32)
        self.item_factors = np.full((data.n_items, c.k), np.nan, dtype=np.float32)
        for raw, idx in train_set.uid_map.items():
            self.user_factors[int(raw)] = theta[idx]
        for raw, idx in train_set.iid_map.items():
            self.item_factors[int(raw)] = beta[idx]

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return self.user_factors[user_index] @ self.item_factors.T


class LightFMConfig(ScorerConfig):
    no_components: int = Field(64, gt=0)
    learning_rate: float = Field(0.05, gt=0)
    item_alpha: float = Field(1e-6, ge=0)
    epochs: int = Field(30, gt=0)
    threads: int = Field(2, gt=0)
    identity: bool = True


class LightFMPeer(Scorer[LightFMConfig]):
    """LightFM WARP; ``categories`` (per item, aligned with the vocabulary) add features.

    Args:
        config: hyperparameters.
        categories: per item, its category strings (None: title tokens only).
    """

    name = "lightfm"

    def __init__(self, config: LightFMConfig | None = None,
                 categories: list[list[str]] | None = None) -> None:
        super().__init__(config or LightFMConfig())
        self.categories = categories
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.item_bias: np.ndarray | None = None

    def _features(self, data: InteractionData) -> list[tuple[int, list[str]]]:
        titles = data.item_titles if data.item_titles is not None else [""] * data.n_items
        rows = []
        for i, title in enumerate(titles):
            feats = {f"t:{w}" for w in _TOKEN.findall(str(title).lower())}
            if self.categories is not None:
                feats |= {f"c:{c.strip().lower()}" for c in self.categories[i] if c.strip()}
            rows.append((i, sorted(feats) or [_NO_FEATURES]))
        return rows

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        from lightfm import LightFM
        from lightfm.data import Dataset

        c = self.config
        features = self._features(data)
        dataset = Dataset(item_identity_features=c.identity)
        dataset.fit(range(data.n_users), range(data.n_items),
                    item_features={f for _, feats in features for f in feats})
        item_features = dataset.build_item_features(features)  # every item, rows sum to 1
        # LightFM learns from the items that have training interactions. A column without
        # any is never a positive, only a WARP negative, so training over it would push its
        # own features (its title tokens, its identity) below every warm item's: each cold
        # item then ranked under all warm ones (exactly 0 NDCG under cold_items). New items
        # are unknown at training time; they get their representation from their features.
        warm = np.flatnonzero(data.matrix.getnnz(axis=0) > 0)
        interactions = (data.matrix[:, warm] != 0).astype(np.float32).tocoo()
        model = LightFM(loss="warp", no_components=c.no_components, learning_rate=c.learning_rate,
                        item_alpha=c.item_alpha, random_state=options.seed)
        model.fit(interactions, item_features=item_features[warm], epochs=c.epochs,
                  num_threads=c.threads)
        # Dataset maps ids in insertion order, so a feature row's index == our item index.
        self.item_bias, self.item_factors = model.get_item_representations(item_features)
        _, self.user_factors = model.get_user_representations()

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return self.user_factors[user_index] @ self.item_factors.T + self.item_bias
