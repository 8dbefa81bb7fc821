"""Device choice (cuda, then mps, then cpu) and CPU thread settings."""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def resolve_device(requested: str = "auto") -> torch.device:
    """Return the torch device to encode on.

    Args:
        requested: ``auto`` picks cuda, then mps, then cpu; anything else (``cpu``, ``cuda``,
            ``cuda:1``, ``mps``) forces that device.

    Raises:
        RuntimeError: a forced device that this machine does not have.
        ValueError: a string torch does not know as a device.
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        raise ValueError(f"unknown device {requested!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} was asked for but CUDA is not available")
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {requested!r} does not exist")
    if device.type == "mps" and not _mps_available():
        raise RuntimeError(f"device {requested!r} was asked for but MPS is not available")
    return device


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads (process-wide) and return the number set.

    Args:
        threads: how many; ``None`` uses ``available_cores()``.
    """
    wanted = threads or available_cores()
    if torch.get_num_threads() != wanted:
        log.debug("torch CPU threads %d -> %d", torch.get_num_threads(), wanted)
        torch.set_num_threads(wanted)
    return wanted


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
