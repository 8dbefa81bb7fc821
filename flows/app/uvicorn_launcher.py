"""``uvicorn`` with TCP_NODELAY kept under ``--workers N`` (uvicorn#3149), serving the guard.

With more than one worker, uvicorn binds the listening socket itself with ``proto`` 0;
accepted connections inherit it, and asyncio turns TCP_NODELAY on only for sockets that say
``IPPROTO_TCP``. Nagle's algorithm then holds each response body until the client's delayed
ACK: every keep-alive request costs about 44 ms more (measured: /ping 0.7 ms with one worker,
44 ms with two). ``mlflow models serve`` starts ``uvicorn`` by name, so ``flows.app.serve`` puts
a script running ``main`` first on the server's PATH. ``main`` also serves MLflow's app behind
``flows.app.guard`` (requests MLflow would answer with HTTP 500 get a 4xx).
"""

from __future__ import annotations

import socket
import sys
import types


def tcp_socket(family: int = -1, type: int = -1, proto: int = -1,  # noqa: A002 (socket API)
               fileno: int | None = None) -> socket.socket:
    """``socket.socket`` that names ``IPPROTO_TCP`` for new internet sockets.

    Args:
        family: address family.
        type: socket type.
        proto: protocol (0/-1 become ``IPPROTO_TCP`` for a new AF_INET/AF_INET6 socket).
        fileno: wrap an existing descriptor instead (left as is).
    """
    if fileno is None and family in (socket.AF_INET, socket.AF_INET6) and proto in (-1, 0):
        proto = socket.IPPROTO_TCP
    return socket.socket(family, type, proto, fileno)


def patch() -> None:
    """Make ``uvicorn.config`` create its listening sockets through ``tcp_socket``."""
    import uvicorn.config

    module = types.ModuleType("socket")
    module.__dict__.update(socket.__dict__, socket=tcp_socket)
    uvicorn.config.socket = module


def main() -> None:
    """Run uvicorn's command line with the patch applied, serving the guarded app."""
    from flows.app.guard import GUARDED_APP, MLFLOW_APP

    patch()
    from uvicorn.main import main as uvicorn_main

    sys.argv = [GUARDED_APP if arg == MLFLOW_APP else arg for arg in sys.argv]
    sys.exit(uvicorn_main())


LAUNCHER = """#!{python}
# Written by flows.app.serve: uvicorn keeping TCP_NODELAY with several workers (uvicorn#3149).
from flows.app.uvicorn_launcher import main

if __name__ == "__main__":  # worker processes re-import this file under another name
    main()
"""
"""The ``uvicorn`` script ``flows.app.serve`` writes (``{python}``: this interpreter)."""
