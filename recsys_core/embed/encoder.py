"""TextEncoder: texts in, (L2-normalised) float32 vectors out, fast on the device at hand.

Speed comes from three things, each measured rather than assumed:

- length bucketing: texts are tokenised once, sorted by token count and batched in that order,
  so a batch pads to its own longest text, not to the longest of a random mix;
- the device's cheap numerics: fp16/bf16 autocast on GPUs, bf16 autocast or dynamic int8
  quantisation on CPUs (kept only when it is faster *and* its vectors stay within
  ``min_fidelity`` cosine of fp32 on a sample of the texts at hand);
- large batches on GPUs; on CPUs, torch threads set to the cores this process may use (and,
  unless ``threads`` is set and when the load average says the CPU is oversubscribed, checked
  against a single thread: on a CPU shared with other busy processes, one thread that is never
  kept waiting can beat a team whose every op waits for its slowest member).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys_core.embed.config import EncoderConfig
from recsys_core.embed.device import available_cores, resolve_device, set_cpu_threads
from recsys_core.embed.pooling import pool, resolve_pooling
from recsys_core.embed.source import (
    default_max_length,
    model_fingerprint,
    model_label,
    position_limit,
    resolve_model_path,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

NUMERIC_PATHS = ("fp32", "bf16", "fp16", "int8")
CALIBRATION_MIN_TEXTS = 1024
"""An ``encode`` call with fewer texts uses fp32 and leaves the choice for a bigger call
(measuring costs 150 to 400 encodings: it pays off from about a thousand texts)."""
CALIBRATION_SAMPLE = 64
"""Texts (spread over token lengths) each candidate path is timed and checked on."""
CALIBRATION_ROUNDS = 2
"""Most timing rounds per path (the best counts); a second only when the first is close."""
CLEAR_WIN = 1.3
"""A path this much faster than the runner-up in the first round is chosen at once."""
TOKENS_PER_TEXT_BUDGET = 128
"""A batch holds at most ``batch_size * TOKENS_PER_TEXT_BUDGET`` padded tokens."""
_DEFAULT_BATCH = {"cpu": 32, "cuda": 512, "mps": 128}


@dataclass(frozen=True)
class Calibration:
    """The numeric path an encoder chose, and the measurements behind the choice.

    Args:
        path: ``fp32``, ``bf16``, ``fp16`` or ``int8``.
        fidelity: least cosine to fp32 over the sample for the chosen path (1.0 for fp32).
        sample_size: texts measured (0 when nothing was measured).
        texts_per_s: measured throughput per candidate path (those that passed the first
            fidelity check).
        fidelities: least cosine to fp32 per candidate path.
        threads: torch CPU threads chosen (0 off CPU).
    """

    path: str
    fidelity: float
    sample_size: int = 0
    texts_per_s: Mapping[str, float] = field(default_factory=dict)
    fidelities: Mapping[str, float] = field(default_factory=dict)
    threads: int = 0

    def describe(self) -> str:
        """One line for logs and benchmark output."""
        if not self.sample_size:
            return f"{self.path} (not measured)"
        cells = ", ".join(
            f"{p} " + (f"{self.texts_per_s[p]:.0f}/s " if p in self.texts_per_s else "untimed ")
            + f"cos>={self.fidelities[p]:.4f}"
            for p in self.fidelities
        )
        threads = f"; {self.threads} threads" if self.threads else ""
        return f"{self.path} (min cosine to fp32 {self.fidelity:.4f}; {cells}{threads})"


class TextEncoder:
    """A Hugging Face encoder with pooling, normalisation, bucketing and a measured fast path.

    The tokenizer and model load lazily, so building an encoder (and its ``encoder_id``, a
    content hash of the model files) costs no model load: a fully cached run never loads one.

    Args:
        config: the encoder's settings; defaults to the packaged all-MiniLM-L6-v2.
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()
        self.model_dir = resolve_model_path(self.config.name_or_path)
        self.label = model_label(self.config.name_or_path, self.model_dir)
        self.device = resolve_device(self.config.device)
        self.pooling = resolve_pooling(self.model_dir, self.config.pooling)
        limit = position_limit(self.model_dir)
        self.max_length = min(self.config.max_length or default_max_length(self.model_dir), limit)
        self.batch_size = self.config.batch_size or _DEFAULT_BATCH.get(self.device.type, 32)
        self.documents_encoded = 0
        self.threads = self.config.threads or available_cores()
        self.calibration: Calibration | None = (
            Calibration("fp32", 1.0) if self.config.quantize == "none" else None
        )
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._models: dict[str, nn.Module] = {}
        self._encoder_id: str | None = None

    def __repr__(self) -> str:
        return f"TextEncoder({self.label!r}, device={self.device}, path={self.numeric_path})"

    @property
    def encoder_id(self) -> str:
        """Stable ID of what decides the vectors: model files' hash, pooling, length, norm.

        The numeric path is not part of it: every path kept is within ``min_fidelity`` of
        fp32, so vectors cached by a GPU run serve a CPU run and back.
        """
        if self._encoder_id is None:
            norm = "l2" if self.config.normalize else "raw"
            self._encoder_id = (
                f"{self.label}@{model_fingerprint(self.model_dir)[:16]}"
                f"|{self.pooling}|{self.max_length}|{norm}"
            )
        return self._encoder_id

    @property
    def numeric_path(self) -> str:
        """The path ``encode`` uses now (``fp32`` until a calibration chose another)."""
        return self.calibration.path if self.calibration else "fp32"

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The Hugging Face tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        return self._tokenizer

    @property
    def model(self) -> nn.Module:
        """The fp32 model on the encoder's device (loaded on first use)."""
        if "fp32" not in self._models:
            from transformers import AutoModel

            if self.device.type == "cpu":
                set_cpu_threads(self.threads)
            started = time.perf_counter()
            model = AutoModel.from_pretrained(str(self.model_dir), dtype=torch.float32)
            self._models["fp32"] = model.eval().to(self.device)
            log.info("loaded %s on %s in %.1fs", self.label, self.device,
                     time.perf_counter() - started)
        return self._models["fp32"]

    @functools.cached_property
    def dim(self) -> int:
        """Embedding dimension (read from the model config; loads no weights)."""
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(str(self.model_dir)).hidden_size)

    def n_parameters(self, include_embeddings: bool = False) -> int:
        """Parameter count (by default without the embedding tables, for FLOP estimates).

        Args:
            include_embeddings: count the token/position embedding tables too.
        """
        return sum(
            p.numel() for name, p in self.model.named_parameters()
            if include_embeddings or "embeddings" not in name
        )

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token IDs per text, with special tokens, truncated to ``max_length``.

        Args:
            texts: the texts.
        """
        if not texts:
            return []
        encoded = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length,
            return_attention_mask=False, return_token_type_ids=False,
        )
        return encoded["input_ids"]

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed ``texts``: float32 (len(texts), dim), rows aligned with ``texts``.

        The first call with at least ``CALIBRATION_MIN_TEXTS`` texts measures the numeric
        paths on a sample of them (unless ``quantize='none'``) and keeps the choice.

        Args:
            texts: the texts (any order; bucketing never changes the output order).
            batch_size: texts per forward pass; defaults to the encoder's.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.tokenize(texts)
        if self.calibration is None and len(ids) >= CALIBRATION_MIN_TEXTS:
            self._calibrate(ids)
        vectors = self._run(ids, self.numeric_path, batch_size)
        self.documents_encoded += len(ids)
        return vectors

    def calibrate(self, texts: Sequence[str]) -> Calibration:
        """Measure the device's numeric paths on ``texts`` and keep the choice.

        Args:
            texts: a sample of the texts to embed (up to ``CALIBRATION_SAMPLE`` are used,
                spread over token lengths).
        """
        if self.calibration is not None and self.config.quantize == "none":
            return self.calibration
        return self._calibrate(self.tokenize(texts))

    def _candidates(self) -> list[str]:
        if self.device.type == "cpu":
            return ["fp32", "bf16", "int8"]
        if self.device.type == "cuda":
            bf16 = ["bf16"] if torch.cuda.is_bf16_supported() else []
            return ["fp32", *bf16, "fp16"]
        return ["fp32", "fp16"]

    def _calibrate(self, ids: list[list[int]]) -> Calibration:
        candidates = self._candidates()
        forced = self.config.quantize
        if forced != "auto":
            if forced not in candidates:
                log.warning("quantize=%r does not apply on %s; using fp32", forced, self.device)
                self.calibration = Calibration("fp32", 1.0)
                return self.calibration
            candidates = ["fp32", forced]
        sample = _spread_sample(ids, CALIBRATION_SAMPLE)
        screen = sample[:: max(1, len(sample) // 12)]  # warm-up, and a first fidelity check
        fidelities: dict[str, float] = {"fp32": 1.0}
        reference = self._run(screen, "fp32")
        timed = ["fp32"]
        for path in candidates[1:]:
            try:
                fidelities[path] = _least_cosine(self._run(screen, path), reference)
            except Exception as error:  # a path this build or device cannot run
                log.warning("numeric path %s unavailable on %s: %s", path, self.device, error)
                self._models.pop(path, None)
                continue
            if fidelities[path] >= self.config.min_fidelity:
                timed.append(path)  # only faithful paths are worth timing
        elapsed = dict.fromkeys(timed, float("inf"))
        vectors: dict[str, np.ndarray] = {}
        for _ in range(CALIBRATION_ROUNDS):  # interleaved rounds, best time: noise-robust
            for path in timed:
                started = time.perf_counter()
                vectors[path] = self._run(sample, path)
                elapsed[path] = min(elapsed[path], time.perf_counter() - started)
            ranked = sorted(elapsed.values())
            if len(ranked) < 2 or ranked[0] * CLEAR_WIN < ranked[1]:
                break  # a clear winner: another round would not change the choice
        speeds = {path: len(sample) / max(seconds, 1e-9) for path, seconds in elapsed.items()}
        fidelities.update({path: _least_cosine(vectors[path], vectors["fp32"]) for path in timed})
        kept = [p for p in speeds if fidelities[p] >= self.config.min_fidelity]
        choice: str
        if forced != "auto":
            choice = forced if forced in kept else "fp32"
            if choice != forced:
                log.warning("quantize=%r fails the fidelity guard (%.4f < %.4f); using fp32",
                            forced, fidelities.get(forced, float("nan")),
                            self.config.min_fidelity)
        else:
            choice = max(kept, key=speeds.__getitem__)
        if (self.device.type == "cpu" and self.config.threads is None and self.threads > 1
                and _cpu_busy(self.threads)):
            self._calibrate_threads(sample, choice, elapsed[choice])
        for path in list(self._models):
            if path not in ("fp32", choice):
                del self._models[path]
        self.calibration = Calibration(choice, fidelities[choice], len(sample), speeds,
                                       fidelities, self.threads if self.device.type == "cpu"
                                       else 0)
        log.info("%s on %s: numeric path %s", self.label, self.device,
                 self.calibration.describe())
        return self.calibration

    def _calibrate_threads(self, sample: list[list[int]], path: str, seconds: float) -> None:
        """Keep one thread instead of all cores when it is clearly (1.5x) faster right now."""
        cores = self.threads
        self.threads = 1
        single = self._timed_run(sample, path)
        if single * 1.5 < seconds:
            log.info("CPU busy: 1 thread (%.2fs) beats %d (%.2fs)", single, cores, seconds)
        else:
            self.threads = cores
            set_cpu_threads(cores)

    def _timed_run(self, ids: list[list[int]], path: str) -> float:
        started = time.perf_counter()
        self._run(ids, path)
        return time.perf_counter() - started

    def _model_for(self, path: str) -> nn.Module:
        if path != "int8":
            return self.model
        if "int8" not in self._models:
            if self.device.type != "cpu":
                raise RuntimeError("dynamic int8 quantisation runs on CPU only")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's migration notice
                self._models["int8"] = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(self.model), {nn.Linear}, dtype=torch.qint8
                )
        return self._models["int8"]

    def _autocast(self, path: str) -> contextlib.AbstractContextManager:
        if path == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if path == "fp16":
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def _run(self, ids: list[list[int]], path: str, batch_size: int | None = None
             ) -> np.ndarray:
        """Forward ``ids`` through the ``path`` model in length-sorted batches."""
        model = self._model_for(path)
        if self.device.type == "cpu":
            set_cpu_threads(self.threads)
        pad_id = self.tokenizer.pad_token_id or 0
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        out = torch.empty((len(ids), self.dim), dtype=torch.float32, device=self.device)
        cuda = self.device.type == "cuda"
        with torch.inference_mode(), self._autocast(path):
            for index in _length_batches(lengths, batch_size or self.batch_size):
                padded, padding_mask = _pad([ids[i] for i in index], pad_id)
                input_ids, mask = torch.from_numpy(padded), torch.from_numpy(padding_mask)
                if cuda:
                    input_ids, mask = input_ids.pin_memory(), mask.pin_memory()
                input_ids = input_ids.to(self.device, non_blocking=True)
                mask = mask.to(self.device, non_blocking=True)
                hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                vectors = pool(hidden, mask, self.pooling)
                if self.config.normalize:
                    vectors = F.normalize(vectors, dim=-1)
                out[torch.from_numpy(index).to(self.device)] = vectors.float()
        return out.cpu().numpy()


def _cpu_busy(cores: int) -> bool:
    """Whether the last minute's load average says other processes compete for the cores."""
    try:
        return os.getloadavg()[0] > cores
    except OSError:  # not available on this platform: measure anyway
        return True


def _length_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Index batches, longest texts first, each under a padded-token budget."""
    order = np.argsort(-lengths, kind="stable")
    budget = batch_size * TOKENS_PER_TEXT_BUDGET
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        count = max(1, min(batch_size, budget // longest))
        yield order[start:start + count]
        start += count


def _pad(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = row
        mask[r, : len(row)] = 1
    return ids, mask


def _spread_sample(ids: list[list[int]], size: int) -> list[list[int]]:
    """Up to ``size`` rows spread evenly over token lengths (shortest to longest)."""
    if len(ids) <= size:
        return list(ids)
    order = np.argsort([len(row) for row in ids], kind="stable")
    picks = np.unique(np.linspace(0, len(ids) - 1, size).round().astype(np.int64))
    return [ids[i] for i in order[picks]]


def _least_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float((a * b).sum(axis=1).min())
