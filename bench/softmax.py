"""The user encoder's full-softmax step: the chunked loss against autograd's cross-entropy.

Times one loss-and-gradients pass of ``recsys_core.deep.softmax.full_softmax_loss``, with
float32 and with bfloat16 matrix products, and of ``cross_entropy(states @ items.T)`` with
``backward`` (what plain torch does, holding the whole logits matrix and its gradient), on
random states and item vectors of the user encoder's shapes: the positions of one training
step (128 windows of up to 50 items) against catalogues of growing size. Runs alternate, and
each cell is the median of ``--repeats``, so a slow spell of the machine reaches every column
alike. The last column is the bfloat16 gradients' relative error against float32's (the
norm of the difference over the norm, states and items together).

    python bench/softmax.py --items 2000,9000,30000 --threads 1

``--budgets`` adds a table of the bfloat16 loss's seconds for each chunk size (logits held
at once, ``full_softmax_loss``'s ``budget``).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import medians  # noqa: E402
from recsys_core.deep.softmax import full_softmax_loss  # noqa: E402
from recsys_core.deep.torch_utils import native_bfloat16  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="2000,9000,30000")
    parser.add_argument("--positions", type=int, default=4200,
                        help="target positions per step (ml-latest-small: about 4,200)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budgets", default="",
                        help="comma-separated chunk sizes in logits (e.g. 1048576,2097152); "
                             "auto: the loss's own rule for this machine (chunk_rows)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"threads {args.threads}; {args.positions} positions x dim {args.dim}, median of "
          f"{args.repeats}; bfloat16 in hardware: {native_bfloat16(torch.device('cpu'))}\n\n"
          "| items | chunked fp32 (s) | chunked bf16 (s) | autograd cross-entropy (s) | "
          "fp32 / autograd | bf16 / fp32 | bf16 gradient error |\n|" + "---:|" * 7, flush=True)
    gen = torch.Generator().manual_seed(0)
    for n in (int(v) for v in args.items.split(",")):
        times, error = row(n, args, gen)
        fp32, bf16, plain = times["fp32"], times["bf16"], times["plain"]
        print(f"| {n:,} | {fp32:.3f} | {bf16:.3f} | {plain:.3f} | {fp32 / plain:.2f} | "
              f"{bf16 / fp32:.2f} | {error:.2%} |", flush=True)
    if args.budgets:
        budgets = [None if v == "auto" else int(v) for v in args.budgets.split(",")]
        print("\n| items | " + " | ".join("bf16, auto (s)" if b is None else
                                          f"bf16, budget {b:,} (s)" for b in budgets)
              + " |\n|" + "---:|" * (len(budgets) + 1), flush=True)
        for n in (int(v) for v in args.items.split(",")):
            cells = budget_row(n, budgets, args, gen)
            print(f"| {n:,} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


def budget_row(n: int, budgets: list[int | None], args: argparse.Namespace, gen: torch.Generator
               ) -> list[float]:
    """Median seconds of the bfloat16 loss against ``n`` items at each budget (alternating)."""
    states = torch.randn(args.positions, args.dim, generator=gen).requires_grad_()
    items = (0.3 * torch.randn(n, args.dim, generator=gen)).requires_grad_()
    targets = torch.randint(0, n, (args.positions,), generator=gen)

    def step(budget: int | None) -> None:
        states.grad = items.grad = None
        full_softmax_loss(states, items, targets, budget=budget,
                          matmul_dtype=torch.bfloat16).backward()

    step(budgets[0])  # warm-up (first-touch)
    return list(medians({i: functools.partial(step, budget) for i, budget in enumerate(budgets)},
                        args.repeats).values())


def row(n: int, args: argparse.Namespace, gen: torch.Generator
        ) -> tuple[dict[str, float], float]:
    """Median seconds of each loss against ``n`` items; bfloat16's gradient error."""
    states = torch.randn(args.positions, args.dim, generator=gen).requires_grad_()
    items = (0.3 * torch.randn(n, args.dim, generator=gen)).requires_grad_()
    targets = torch.randint(0, n, (args.positions,), generator=gen)

    def chunked(dtype: torch.dtype) -> Callable[[], torch.Tensor]:
        def step() -> torch.Tensor:
            states.grad = items.grad = None
            full_softmax_loss(states, items, targets, matmul_dtype=dtype).backward()
            return torch.cat([states.grad.ravel(), items.grad.ravel()])  # type: ignore[union-attr]
        return step

    def plain() -> None:
        torch.nn.functional.cross_entropy(states @ items.T, targets).backward()

    steps = {"fp32": chunked(torch.float32), "bf16": chunked(torch.bfloat16), "plain": plain}
    exact, rounded = steps["fp32"](), steps["bf16"]()  # also the warm-up (first-touch)
    plain()
    error = float((rounded - exact).norm() / exact.norm())
    return medians(steps, args.repeats), error


if __name__ == "__main__":
    main()
