"""Network pieces shared by the deep sources."""

from __future__ import annotations

import torch
from torch import nn


class Dropout(nn.Module):
    """``nn.Dropout`` whose mask on CPU costs about a third as much.

    torch's CPU dropout draws one Bernoulli number per element (``bernoulli_``): on the
    user encoder's feed-forward activations (128 x 50 x 256) that takes 12-13 ms, and its
    nine dropouts were 15% of a training step on an AMD EPYC (``bench/dropout.py``). This
    one takes 16 random bits per element from 64-bit draws (``random_``, about 10x faster
    per element) and keeps an element when its bits clear ``p`` rounded to 1/65536; kept
    elements are scaled by the inverse of that rounded keep rate, so the expectation is
    exact. Elsewhere than on CPU, and outside training, it is ``nn.functional.dropout``.

    Args:
        p: the chance that an element is zeroed, in [0, 1).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.dropped = round(p * 65536)  # of the 65,536 values 16 bits take

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with each element zeroed with chance ``p`` and the rest scaled (training)."""
        if not self.training or not self.dropped or x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, self.training)
        words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64)
        bits = words.random_(-2 ** 63, None).view(torch.int16)[:x.numel()].view(x.shape)
        scale = 65536 / (65536 - self.dropped)
        return x * (bits >= self.dropped - 32768).to(x.dtype).mul_(scale)

    def extra_repr(self) -> str:
        """The rate, as ``nn.Dropout`` prints it."""
        return f"p={self.p}"


def make_mlp(dim_in: int, dim_out: int, hidden: int, layers: int, dropout: float,
             activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Build an MLP ``dim_in -> hidden (x layers) -> dim_out``.

    Args:
        dim_in: input width (embedding size).
        dim_out: output width.
        hidden: hidden width.
        layers: hidden layers.
        dropout: dropout after each hidden layer.
        activation: the non-linearity after each hidden layer.
    """
    blocks: list[nn.Module] = []
    width = dim_in
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), activation(), Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, dim_out))
    return nn.Sequential(*blocks)
