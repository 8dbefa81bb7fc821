"""Fixtures: the tiny random BERT of ``tests.tiny_bert``, encoders over it, and sample texts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recsys_core.embed import EncoderConfig, TextEncoder
from tests.tiny_bert import WORDS, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def make_encoder(tiny_model_dir: Path) -> Callable[..., TextEncoder]:
    def make(**overrides: object) -> TextEncoder:
        config = EncoderConfig(name_or_path=str(tiny_model_dir), device="cpu", **overrides)
        return TextEncoder(config)

    return make


@pytest.fixture
def texts() -> list[str]:
    """Sixty texts of varied length (enough to trigger calibration)."""
    base = [
        "the cat sat on the mat",
        "stock market fell",
        "a love story in space",
        "toy story. categories: animation, comedy. tags: pixar, fun",
        "an old war drama with romance and a thriller plot about crime",
        "heat",
    ]
    out = []
    for i in range(60):
        words = base[i % len(base)].split()
        out.append(" ".join(words + WORDS[i % 17: i % 17 + i % 9]) + f" {i}")
    return out
