"""Network pieces shared by the deep sources."""

from __future__ import annotations

from torch import nn


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
        blocks += [nn.Linear(width, hidden), activation(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, dim_out))
    return nn.Sequential(*blocks)

