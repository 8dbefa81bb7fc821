"""Start Prefect's temporary local API while a command imports its flow.

Without ``PREFECT_API_URL`` Prefect starts a local API server (a subprocess) on the flow's
first call, and waits for it: 12-27 s here. Importing a flow module (torch, transformers,
MLflow) takes another 10 s before that, in the same process. Both are mostly one core's
work, so on a machine with two they can run side by side.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def local_api_starting() -> Iterator[None]:
    """Start the temporary API (when no ``PREFECT_API_URL`` is set) while the block runs.

    On exit the API is up (or its start failed, and that error is raised), so the flow's
    first call finds it running. Prefect's server is one shared instance per process: the
    flow's client then uses the same one instead of starting another.

    Raises:
        RuntimeError: the temporary server did not come up (Prefect's own message).
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield
        return
    failed: list[BaseException] = []

    def start() -> None:
        try:
            SubprocessASGIServer().start()
        except BaseException as error:  # noqa: BLE001  (raised in the caller's thread)
            failed.append(error)

    starter = threading.Thread(target=start, name="prefect-local-api", daemon=True)
    starter.start()
    try:
        yield
    finally:
        starter.join()
    if failed:
        raise failed[0]
