from __future__ import annotations

import numpy as np

from recsys_core.embed import EncoderConfig, TextEncoder, packaged_model_path


def test_packaged_minilm_puts_similar_sentences_closer() -> None:
    """The one test that loads the real packaged all-MiniLM-L6-v2."""
    encoder = TextEncoder(EncoderConfig(name_or_path="all-MiniLM-L6-v2", device="cpu"))
    assert encoder.model_dir == packaged_model_path()
    assert encoder.pooling == "mean" and encoder.max_length == 256
    assert encoder.encoder_id.startswith("sentence-transformers/all-MiniLM-L6-v2@")
    a, b, c = encoder.encode([
        "A cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "The central bank raised interest rates again.",
    ])
    assert a.shape == (384,)
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    assert a @ b > a @ c + 0.3
