"""``uvicorn`` with TCP_NODELAY kept under ``workers=N`` (a workaround for uvicorn#3149).

With more than one worker, uvicorn binds the listening socket itself with ``proto`` 0;
accepted connections inherit it, and asyncio turns TCP_NODELAY on only for sockets that say
``IPPROTO_TCP``. Nagle's algorithm then holds each response body until the client's delayed
ACK: every keep-alive request costs about 44 ms more (measured: /ping 0.7 ms with one worker,
44 ms with two). ``flows.app.server`` applies ``patch`` before it starts uvicorn.
"""

from __future__ import annotations

import socket
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
