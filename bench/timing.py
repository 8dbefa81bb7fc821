"""Timing helpers the micro-benches share."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def seconds(step: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def medians(steps: Mapping[K, Callable[[], object]], repeats: int) -> dict[K, float]:
    """Median seconds of each step over ``repeats`` rounds, the steps alternating within a
    round, so a slow spell of the machine reaches every step alike (no warm-up: callers do
    their own)."""
    times: dict[K, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(seconds(step))
    return {name: statistics.median(cell) for name, cell in times.items()}
