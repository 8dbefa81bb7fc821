"""Flows that write the state folder run one at a time per ``RECSYS_HOME``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect.logging import get_run_logger

from recsys_core.config import get_settings
from recsys_core.lock import home_lock

P = ParamSpec("P")
R = TypeVar("R")


def exclusive(fn: Callable[P, R]) -> Callable[P, R]:
    """Run the flow function holding the lock of ``RECSYS_HOME`` (``recsys_core.lock``).

    Put it under ``@flow``: a second run on the same state folder logs whom it waits for and
    starts when the first has finished (a subflow of a holder passes straight through).
    """
    @functools.wraps(fn)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with home_lock(get_settings().home, f"flow {fn.__name__}",
                       on_wait=get_run_logger().warning):
            return fn(*args, **kwargs)

    # Prefect reads the parameters from the signature; resolved here, where the flow's own
    # module names its annotations' types.
    locked.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return locked
