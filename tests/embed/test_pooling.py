from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recsys_core.embed import pool, resolve_pooling


def test_pool_modes_ignore_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(pool(hidden, mask, "mean"), torch.tensor([[2.0, 3.0]]))
    assert torch.allclose(pool(hidden, mask, "cls"), torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(pool(hidden, mask, "max"), torch.tensor([[3.0, 4.0]]))
    with pytest.raises(ValueError):
        pool(hidden, mask, "median")


def _st_pooling(folder: Path, flag: str, subdir: str = "1_Pooling") -> None:
    (folder / subdir).mkdir(parents=True)
    flags = {f: False for f in ("pooling_mode_cls_token", "pooling_mode_mean_tokens",
                                "pooling_mode_max_tokens")}
    flags[flag] = True
    (folder / subdir / "config.json").write_text(json.dumps(flags))


def test_resolve_pooling_reads_sentence_transformers_config(tmp_path: Path) -> None:
    assert resolve_pooling(tmp_path) == "mean"  # no config: mean
    cls_dir = tmp_path / "cls"
    _st_pooling(cls_dir, "pooling_mode_cls_token")
    assert resolve_pooling(cls_dir) == "cls"
    assert resolve_pooling(cls_dir, "max") == "max"  # a forced mode wins
    odd = tmp_path / "odd"
    _st_pooling(odd, "pooling_mode_max_tokens", subdir="pool")
    (odd / "modules.json").write_text(json.dumps(
        [{"idx": 1, "name": "1", "path": "pool", "type": "sentence_transformers.models.Pooling"}]
    ))
    assert resolve_pooling(odd) == "max"
    with pytest.raises(ValueError):
        resolve_pooling(tmp_path, "median")
