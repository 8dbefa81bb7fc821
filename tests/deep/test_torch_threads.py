"""Torch thread count while the deep sources train."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from recsys_core.deep.torch_utils import TRAIN_THREADS, torch_threads
from recsys_core.scoring import TrainOptions


def test_training_uses_the_default_threads_and_restores_the_setting() -> None:
    before = torch.get_num_threads()
    with torch_threads(TrainOptions()):
        assert torch.get_num_threads() == TRAIN_THREADS
    assert torch.get_num_threads() == before


def test_options_num_threads_wins() -> None:
    with torch_threads(SimpleNamespace(num_threads=2)):
        assert torch.get_num_threads() == 2
