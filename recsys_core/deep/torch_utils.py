"""Small torch helpers shared by the deep sources: device choice, seeding, conversions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """Pick the torch device for ``device``, falling back to CPU when CUDA is absent.

    Args:
        device: ``cpu``, ``cuda`` or ``cuda:N``.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %r requested but CUDA is not available; using CPU", device)
        return torch.device("cpu")
    return torch.device(device)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Run a training block reproducibly, without leaking RNG or determinism settings.

    Forks torch's RNG (restored on exit), seeds it, turns on deterministic algorithms for
    the block (CPU kernels used here already are; on CUDA this picks deterministic ones) and
    yields a seeded CPU generator for shuffling and negative sampling.

    Args:
        seed: the run's seed.
        device: where training runs.
    """
    cuda = [device.index or 0] if device.type == "cuda" else []
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (faster than float32).

    CUDA does from Ampere on; a CPU does with AVX512-BF16 or AMX (elsewhere torch emulates
    bfloat16 and it is slower than float32).
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch.cpu
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)


Precision = Literal["auto", "bfloat16", "float32"]
"""The type of a training's matrix products: ``auto`` is bfloat16 where ``native_bfloat16``."""


def matmul_dtype(precision: Precision, device: torch.device) -> torch.dtype:
    """The type a training on ``device`` multiplies its matrices in, for ``precision``."""
    native = precision == "auto" and native_bfloat16(device)
    return torch.bfloat16 if precision == "bfloat16" or native else torch.float32


TRAIN_THREADS = 1
"""Default torch CPU threads while training the deep sources' small networks. Their ops are
small (batches of a few hundred rows through layers of a few hundred units), so a second
thread gains little on a quiet machine (0.19 vs 0.26 s per projector epoch on 2 cores), while
OpenMP's spinning threads collapse when any other process competes for a core (9.3 s vs
0.28 s per epoch beside one busy process): one thread is the robust default."""


@contextmanager
def torch_threads(options: object) -> Iterator[None]:
    """Use ``options.num_threads`` torch threads for a training block, else ``TRAIN_THREADS``.

    The previous setting is restored on exit.

    Args:
        options: the run's ``TrainOptions`` (``num_threads`` is optional on them).
    """
    threads = getattr(options, "num_threads", None) or TRAIN_THREADS
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float32.

    Args:
        matrix: float (n, d).
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def require_embeddings(data_embeddings: np.ndarray | None, source: str) -> np.ndarray:
    """Unit-norm item embeddings, or a clear error naming the source that needs them.

    Args:
        data_embeddings: ``InteractionData.item_embeddings``.
        source: the scorer's name, for the message.
    """
    if data_embeddings is None:
        raise ValueError(f"{source} needs item_embeddings on the InteractionData "
                         "(run the text encoder first)")
    return unit_rows(data_embeddings)
