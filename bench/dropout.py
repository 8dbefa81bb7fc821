"""Dropout on CPU: torch's ``nn.Dropout`` against ``recsys_core.deep.layers.Dropout``.

Times, on one thread, forward and backward of each dropout on the user encoder's
activations (128 windows x 50 positions, feed-forward width 256 and model width 64), and one
training step of the user encoder (``_Trainer._step``, ml-latest-small's shapes: 7,900 warm
items of 9,700, text width 384, full windows) with either dropout in its network. Runs
alternate and each cell is the median of ``--repeats``, so a slow spell of the machine
reaches both columns alike.

    python bench/dropout.py --repeats 7
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import medians  # noqa: E402
from recsys_core.deep.layers import Dropout  # noqa: E402
from recsys_core.deep.user_encoder import SequenceNet, UserEncoderConfig, _Trainer  # noqa: E402


def warm_medians(steps: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """``medians`` of the steps, each run once first (warm-up)."""
    for step in steps.values():
        step()
    return medians(steps, repeats)


def dropout_step(layer: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """Forward and backward of ``layer`` on ``x``."""
    def step() -> None:
        x.grad = None
        layer(x).sum().backward()
    return step


def trainer(torch_dropout: bool) -> _Trainer:
    """A user-encoder trainer at ml-latest-small's shapes, with torch's dropout or ours."""
    torch.manual_seed(0)
    config, n_items, warm_n = UserEncoderConfig(), 9_700, 7_900
    net = SequenceNet(n_items, 384, config)
    if torch_dropout:
        for module in list(net.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, Dropout):
                    setattr(module, name, nn.Dropout(child.p))
    warm = np.arange(n_items) < warm_n
    return _Trainer(net, torch.randn(n_items, 384), warm, config,
                    torch.Generator().manual_seed(0), torch.device("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"1 thread; median of {args.repeats}\n\n"
          "| what | torch nn.Dropout (ms) | layers.Dropout (ms) | ratio |\n|---|---:|---:|---:|")
    for shape in ((128, 50, 256), (128, 50, 64)):
        x = torch.randn(*shape, requires_grad=True)
        cells = warm_medians({"torch": dropout_step(nn.Dropout(0.2), x),
                              "ours": dropout_step(Dropout(0.2), x)}, args.repeats)
        print(f"| dropout 0.2, forward + backward, {shape} | {cells['torch'] * 1e3:.2f} | "
              f"{cells['ours'] * 1e3:.2f} | {cells['ours'] / cells['torch']:.2f} |", flush=True)
    window = torch.randint(0, 7_900, (128, 51), generator=torch.Generator().manual_seed(1))
    trainers = {"torch": trainer(True), "ours": trainer(False)}
    cells = warm_medians({name: (lambda t=t: t._step(window)) for name, t in trainers.items()},
                         args.repeats)
    print(f"| user-encoder training step (128 windows of 50, 7,900 warm items) | "
          f"{cells['torch'] * 1e3:.1f} | {cells['ours'] * 1e3:.1f} | "
          f"{cells['ours'] / cells['torch']:.2f} |")


if __name__ == "__main__":
    main()
