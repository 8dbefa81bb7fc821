"""Full-catalogue softmax cross-entropy that never holds the whole logits matrix.

A step of the user encoder scores every target position against every warm item: 6,400
positions x 10k items is a 250 MB logits matrix, and autograd keeps it and its gradient, so
the step is bound by memory traffic, and at 50k items it needs gigabytes. This computes the
same loss and the same gradients in row chunks whose logits stay small (the idea of Wijmans
et al.'s "Cut Your Losses in Large-Vocabulary Language Models", 2024): the gradients are
computed in the forward pass while each chunk's logits are at hand, so memory is bounded by
``budget`` and the logits are computed once.

The three matrix products per chunk are most of a step's cost. With ``matmul_dtype``
bfloat16 they read bfloat16 copies of the states and the items, and each chunk's logits and
probabilities are bfloat16 (the products accumulate in fp32, and the softmax computes in
fp32): on a CPU with AVX512-BF16 that makes the loss about 1.5x faster, for gradients within
about 0.3% of fp32's (``bench/softmax.py``), the precision mixed-precision training runs at
on GPUs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

MIN_ROWS = 128
"""Fewest rows a chunk has by default: thinner chunks make thin products, and against many
items each chunk streams the whole item matrix from a far cache three times."""


@functools.cache
def l2_bytes() -> int:
    """One core's L2 cache in bytes (Linux sysfs); 2 MiB where it cannot be read."""
    try:
        cache = Path("/sys/devices/system/cpu/cpu0/cache")
        for index in cache.glob("index*"):
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
                return int(size.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return 1 << 21


def chunk_rows(n_items: int, device: torch.device) -> int:
    """Rows per chunk of the full softmax on ``device`` against ``n_items`` candidates.

    On CPU, as many logits as one core's L2 cache has bytes, and at least ``MIN_ROWS`` rows.
    The fastest chunk of ``bench/softmax.py --budgets`` followed the cache: at 8k items 1M
    logits on an AMD EPYC (1 MiB L2; 2M took 3-9% longer), 2M on an Intel Xeon (2 MiB; 1M
    took 33% longer), and at 30k items about 128 rows on both (4M logits: 1M took 40% longer
    on the EPYC). Elsewhere, 2M logits (and ``MIN_ROWS``).
    """
    budget = l2_bytes() if device.type == "cpu" else 1 << 21
    return max(MIN_ROWS, budget // max(n_items, 1))


def full_softmax_loss(states: torch.Tensor, items: torch.Tensor, targets: torch.Tensor,
                      budget: int | None = None,
                      matmul_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(states @ items.T)`` against ``targets``.

    With float32 products, equal to ``cross_entropy(states @ items.T, targets)`` in value
    and gradients.

    Args:
        states: (P, d) one row per target position.
        items: (N, d) every candidate's vector.
        targets: (P,) the column of each row's target.
        budget: logits held at once (rows per chunk = budget // N); ``None``:
            ``chunk_rows``'s rule for the device.
        matmul_dtype: the inputs' type in the matrix products (float32: exact; bfloat16:
            see above).
    """
    rows = (chunk_rows(len(items), states.device) if budget is None
            else max(1, budget // max(len(items), 1)))
    with torch.autocast(states.device.type, enabled=False):  # products in ``matmul_dtype``
        loss: torch.Tensor = _ChunkedSoftmax.apply(states.float(), items.float(), targets,
                                                   rows, matmul_dtype)
    return loss


_TINY = torch.finfo(torch.float32).tiny


class _ChunkedSoftmax(torch.autograd.Function):
    """The loss and, in the same pass over each chunk's logits, its gradients.

    The loss is a scalar, so its gradients only scale with the incoming one: computing them
    while the chunk's logits are at hand spares recomputing the logits in the backward pass.
    """

    @staticmethod
    def forward(ctx: Any, states: torch.Tensor, items: torch.Tensor, targets: torch.Tensor,
                rows: int, matmul_dtype: torch.dtype) -> torch.Tensor:
        total = states.new_zeros(())
        grad_states = torch.empty_like(states)
        grad_items = torch.zeros_like(items)
        states_mm, items_mm = states.to(matmul_dtype), items.to(matmul_dtype)
        for start in range(0, len(states), rows):
            chunk, target = states_mm[start:start + rows], targets[start:start + rows]
            picked = torch.arange(len(chunk), device=chunk.device)
            # One fused softmax over the chunk's logits (it computes in float32 whatever its
            # input, and writes the products' type). Its passes over the chunk are most of
            # the loss's cost beside the products: a maximum, an exp, a sum and a division
            # done one by one, each with a float32 copy of the chunk, took 40% longer.
            probs = torch.softmax(chunk @ items_mm.T, dim=1)
            # -log p(target): each row's loss. It saturates near 87 (float32's smallest
            # normal) should a target's probability underflow; the gradients do not.
            total -= probs[picked, target].float().clamp_min(_TINY).log().sum()
            # d (summed loss) / d logits = softmax - one-hot; the 1/n of the mean comes last,
            # on the two small gradients instead of the chunk.
            probs[picked, target] -= 1.0
            grad_states[start:start + rows] = probs @ items_mm
            if matmul_dtype == grad_items.dtype:
                grad_items.addmm_(probs.T, chunk)
            else:  # addmm_ cannot add a bfloat16 product into fp32
                grad_items += probs.T @ chunk
        n = max(len(states), 1)
        ctx.save_for_backward(grad_states / n, grad_items / n)
        return total / n

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_states, grad_items = ctx.saved_tensors
        return grad_states * grad, grad_items * grad, None, None, None
