"""Collaborative filtering sources: MostPop, implicit's ALS/BPR/item-kNN, and EASE."""

from recsys_core.cf.ease import EASE, EASEConfig
from recsys_core.cf.implicit_models import ALS, BPR, ALSConfig, BPRConfig, ItemKNN, ItemKNNConfig
from recsys_core.cf.popular import MostPop, MostPopConfig

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "ALSConfig",
    "BPRConfig",
    "EASEConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "MostPop",
    "MostPopConfig",
]
