"""Deep-source tests run torch single-threaded.

The models under test are tiny: intra-op threads only add OpenMP barriers, and on a busy
2-core machine a descheduled worker thread turns each barrier into a scheduler wait (a test
that takes seconds single-threaded took minutes with two threads).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_torch() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
