from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from recsys_core.embed import TextEncoder
from recsys_core.embed import encoder as encoder_module


def plain_loop(encoder: TextEncoder, texts: list[str], batch_size: int = 8) -> np.ndarray:
    """The reference: a fixed-batch, unsorted fp32 transformers loop with mean pooling."""
    tokenizer = AutoTokenizer.from_pretrained(str(encoder.model_dir))
    model = AutoModel.from_pretrained(str(encoder.model_dir), dtype=torch.float32).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=encoder.max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out).numpy()


def test_encode_shape_norm_and_alignment(make_encoder: Callable[..., TextEncoder],
                                         texts: list[str]) -> None:
    encoder = make_encoder(quantize="none", batch_size=7)
    vectors = encoder.encode(texts)
    assert vectors.shape == (len(texts), 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([encoder.encode([t])[0] for t in texts[:10]])
    assert np.allclose(vectors[:10], one_by_one, atol=1e-5)  # bucketing keeps the order
    assert encoder.documents_encoded == len(texts) + 10
    assert encoder.encode([]).shape == (0, 32)
    with pytest.raises(TypeError):
        encoder.encode("one string")


def test_fp32_engine_matches_plain_transformers_loop(make_encoder: Callable[..., TextEncoder],
                                                     texts: list[str]) -> None:
    encoder = make_encoder(quantize="none")
    cosine = (encoder.encode(texts) * plain_loop(encoder, texts)).sum(axis=1)
    assert cosine.min() >= 0.9999


def test_truncation_to_max_length(make_encoder: Callable[..., TextEncoder]) -> None:
    encoder = make_encoder(max_length=8, quantize="none")
    head = "the cat sat on the mat and"
    assert len(encoder.tokenize([head])[0]) == 8
    a, b = encoder.encode([head, head + " a dog sat too"])
    assert np.allclose(a, b, atol=1e-6)


def test_encoder_id_names_what_decides_the_vectors(make_encoder: Callable[..., TextEncoder]
                                                   ) -> None:
    base = make_encoder()
    assert base.encoder_id == make_encoder(quantize="none", batch_size=3).encoder_id
    assert base.encoder_id != make_encoder(pooling="cls").encoder_id
    assert base.encoder_id != make_encoder(max_length=16).encoder_id
    assert base.encoder_id.endswith("|mean|64|l2")
    assert base.dim == 32 and base.n_parameters() > 0


def test_pooling_modes_differ(make_encoder: Callable[..., TextEncoder], texts: list[str]) -> None:
    mean = make_encoder(quantize="none").encode(texts[:5])
    cls = make_encoder(quantize="none", pooling="cls").encode(texts[:5])
    assert not np.allclose(mean, cls)
    raw = make_encoder(quantize="none", normalize=False).encode(texts[:5])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_auto_calibration_measures_and_keeps_a_faithful_path(
        make_encoder: Callable[..., TextEncoder], texts: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "CALIBRATION_MIN_TEXTS", 32)
    encoder = make_encoder()
    encoder.encode(texts[:3])  # too few texts to measure: fp32, no decision yet
    assert encoder.calibration is None and encoder.numeric_path == "fp32"
    vectors = encoder.encode(texts)
    calibration = encoder.calibration
    assert calibration is not None and calibration.sample_size > 0
    assert set(calibration.texts_per_s) >= {"fp32"}
    assert calibration.fidelities["fp32"] == pytest.approx(1.0, abs=1e-6)
    assert calibration.fidelity >= encoder.config.min_fidelity
    assert calibration.fidelities[calibration.path] == calibration.fidelity
    assert calibration.path in calibration.describe()
    reference = make_encoder(quantize="none").encode(texts)
    assert (vectors * reference).sum(axis=1).min() >= encoder.config.min_fidelity


def test_fidelity_guard_rejects_an_unfaithful_int8_path(
        make_encoder: Callable[..., TextEncoder], texts: list[str]) -> None:
    strict = make_encoder(quantize="int8", min_fidelity=1.0)
    strict.calibrate(texts)
    assert strict.numeric_path == "fp32"
    assert strict.calibration.fidelities["int8"] < 1.0
    lax = make_encoder(quantize="int8", min_fidelity=0.0)
    lax.calibrate(texts)
    assert lax.numeric_path == "int8"
    vectors = lax.encode(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_quantize_none_never_measures(make_encoder: Callable[..., TextEncoder],
                                      texts: list[str]) -> None:
    encoder = make_encoder(quantize="none")
    encoder.encode(texts)
    assert encoder.numeric_path == "fp32" and encoder.calibration.sample_size == 0


def test_forced_threads_are_kept(make_encoder: Callable[..., TextEncoder],
                                 texts: list[str]) -> None:
    before = torch.get_num_threads()
    try:
        encoder = make_encoder(threads=1)
        encoder.calibrate(texts)
        encoder.encode(texts)
        assert encoder.threads == 1 and encoder.calibration.threads == 1
        assert torch.get_num_threads() == 1
        assert "1 threads" in encoder.calibration.describe()
    finally:
        torch.set_num_threads(before)
