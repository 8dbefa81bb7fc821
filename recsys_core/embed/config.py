"""EncoderConfig: everything that decides how texts become vectors."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recsys_core.config import DEFAULT_ENCODER

Pooling = Literal["auto", "mean", "cls", "max"]
Quantize = Literal["auto", "none", "bf16", "fp16", "int8"]


class EncoderConfig(BaseModel):
    """A text encoder's settings (frozen; round-trips through ``model_dump``/``model_validate``).

    Args:
        name_or_path: Hugging Face model name or local folder. ``all-MiniLM-L6-v2`` and
            ``sentence-transformers/all-MiniLM-L6-v2`` resolve to the packaged copy.
        pooling: ``auto`` reads sentence-transformers' ``1_Pooling/config.json`` (mean when
            absent); or force ``mean``, ``cls`` or ``max``.
        max_length: token cut-off; ``None`` takes the model's own (``sentence_bert_config.json``
            ``max_seq_length``, else the position limit, at most 512).
        batch_size: texts per forward pass; ``None`` picks by device (32 on CPU, 512 on GPU).
        device: ``auto`` (cuda, then mps, then cpu) or a torch device string to force one.
        quantize: numeric path. ``auto`` measures fp32 against the faster candidates of the
            device (CPU: bf16 autocast and dynamic int8; GPU: fp16/bf16 autocast) on a sample
            and keeps the fastest whose embeddings stay within ``min_fidelity`` cosine of fp32.
            ``none`` is plain fp32; naming one path still runs the fidelity guard.
        min_fidelity: the least cosine to fp32, on every sampled text, a faster path must keep.
        normalize: L2-normalise the pooled vectors.
        threads: torch CPU threads; ``None`` uses every core this process may run on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name_or_path: str = DEFAULT_ENCODER
    pooling: Pooling = "auto"
    max_length: int | None = Field(default=None, gt=1)
    batch_size: int | None = Field(default=None, gt=0)
    device: str = "auto"
    quantize: Quantize = "auto"
    min_fidelity: float = Field(default=0.99, ge=0.0, le=1.0)
    normalize: bool = True
    threads: int | None = Field(default=None, gt=0)
