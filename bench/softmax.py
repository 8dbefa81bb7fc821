"""The user encoder's full-softmax step: the chunked loss against autograd's cross-entropy.

Times one loss-and-gradients pass of ``recsys_core.deep.softmax.full_softmax_loss`` and of
``cross_entropy(states @ items.T)`` with ``backward`` (what plain torch does, holding the
whole logits matrix and its gradient), on random states and item vectors of the user
encoder's shapes: the positions of one training step (128 windows of up to 50 items) against
catalogues of growing size. Runs alternate, and each cell is the median of ``--repeats``, so
a slow spell of the machine reaches both columns alike.

    python bench/softmax.py --items 2000,9000,30000 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.deep.softmax import full_softmax_loss  # noqa: E402


def seconds(step: Callable[[], None]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="2000,9000,30000")
    parser.add_argument("--positions", type=int, default=4200,
                        help="target positions per step (ml-latest-small: about 4,200)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"threads {args.threads}; {args.positions} positions x dim {args.dim}, median of "
          f"{args.repeats}\n\n| items | chunked (s) | autograd cross-entropy (s) | ratio |"
          "\n|---:|---:|---:|---:|", flush=True)
    gen = torch.Generator().manual_seed(0)
    for n in (int(v) for v in args.items.split(",")):
        a, b = row(n, args, gen)
        print(f"| {n:,} | {a:.3f} | {b:.3f} | {a / b:.2f} |", flush=True)


def row(n: int, args: argparse.Namespace, gen: torch.Generator) -> tuple[float, float]:
    """Median seconds of the chunked loss and of autograd's, against ``n`` items."""
    states = torch.randn(args.positions, args.dim, generator=gen).requires_grad_()
    items = (0.3 * torch.randn(n, args.dim, generator=gen)).requires_grad_()
    targets = torch.randint(0, n, (args.positions,), generator=gen)

    def ours() -> None:
        full_softmax_loss(states, items, targets).backward()

    def plain() -> None:
        torch.nn.functional.cross_entropy(states @ items.T, targets).backward()

    ours()
    plain()  # warm-up: first-touch allocation
    times: dict[str, list[float]] = {"ours": [], "plain": []}
    for _ in range(args.repeats):
        times["ours"].append(seconds(ours))
        times["plain"].append(seconds(plain))
    return statistics.median(times["ours"]), statistics.median(times["plain"])


if __name__ == "__main__":
    main()
