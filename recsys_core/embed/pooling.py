"""Pooling token vectors into one vector per text, as the model's config says."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

POOLING_MODES = ("mean", "cls", "max")

# sentence-transformers' 1_Pooling/config.json flags, in its own order of precedence.
_ST_FLAGS = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_max_tokens", "max"),
    # sum / sqrt(n) is mean times a positive scalar: identical after L2 normalisation.
    ("pooling_mode_mean_sqrt_len_tokens", "mean"),
)


def resolve_pooling(model_dir: Path | None, requested: str = "auto") -> str:
    """Return the pooling mode to use for a model.

    Args:
        model_dir: the model's local folder (``None`` when it has none).
        requested: ``auto`` reads sentence-transformers' ``1_Pooling/config.json`` (found
            through ``modules.json`` when present) and falls back to ``mean``; ``mean``,
            ``cls`` or ``max`` force a mode.

    Raises:
        ValueError: an unknown mode, or a pooling config naming only modes not supported here.
    """
    if requested != "auto":
        if requested not in POOLING_MODES:
            raise ValueError(f"unknown pooling {requested!r}; use one of {POOLING_MODES}")
        return requested
    config = _pooling_config_file(model_dir) if model_dir is not None else None
    if config is None:
        return "mean"
    flags = json.loads(config.read_text())
    for flag, mode in _ST_FLAGS:
        if flags.get(flag):
            log.debug("pooling %s from %s", mode, config)
            return mode
    raise ValueError(f"{config} names no pooling mode this encoder supports ({POOLING_MODES})")


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool ``hidden`` (batch, tokens, dim) over the tokens that ``mask`` (batch, tokens) keeps.

    Args:
        hidden: the encoder's last hidden states.
        mask: attention mask, 1 for real tokens and 0 for padding.
        mode: ``mean``, ``cls`` or ``max``.
    """
    hidden = hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    keep = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
    if mode == "max":
        return hidden.masked_fill(keep == 0, float("-inf")).amax(dim=1)
    raise ValueError(f"unknown pooling {mode!r}")


def _pooling_config_file(model_dir: Path) -> Path | None:
    modules = model_dir / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text()):
            if str(module.get("type", "")).endswith("Pooling"):
                candidate = model_dir / module.get("path", "") / "config.json"
                if candidate.is_file():
                    return candidate
    candidate = model_dir / "1_Pooling" / "config.json"
    return candidate if candidate.is_file() else None
