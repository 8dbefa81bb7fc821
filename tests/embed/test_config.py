from __future__ import annotations

import pydantic
import pytest

from recsys_core.config import DEFAULT_ENCODER
from recsys_core.embed import DocumentTemplate, EncoderConfig


def test_encoder_config_round_trips() -> None:
    config = EncoderConfig(name_or_path="/models/x", pooling="cls", max_length=128,
                           batch_size=16, device="cpu", quantize="int8", min_fidelity=0.995)
    dumped = config.model_dump()
    assert EncoderConfig.model_validate(dumped) == config
    assert EncoderConfig.model_validate_json(config.model_dump_json()) == config
    assert set(dumped) >= {"name_or_path", "pooling", "max_length", "batch_size", "device",
                           "quantize"}


def test_encoder_config_defaults_frozen_and_strict() -> None:
    config = EncoderConfig()
    assert config.name_or_path == DEFAULT_ENCODER
    assert (config.pooling, config.device, config.quantize) == ("auto", "auto", "auto")
    with pytest.raises(pydantic.ValidationError):
        config.pooling = "cls"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        EncoderConfig(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        EncoderConfig(pooling="median")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        EncoderConfig(batch_size=0)


def test_document_template_round_trips() -> None:
    template = DocumentTemplate(parts=("{title}", "About: {text}"), separator=" | ", max_tags=3)
    assert DocumentTemplate.model_validate(template.model_dump()) == template
