"""An ASGI guard in front of MLflow's scoring server: requests it would crash on get a 4xx.

``mlflow models serve`` answers a ``POST /invocations`` without a ``Content-Type`` header with
HTTP 500 (MLflow 3.17 splits the missing header), and reads a body of any size into memory.
The guard answers those requests itself, before MLflow sees them: no content type -> 415, a
body over ``MAX_BODY_BYTES`` (by its ``Content-Length``) -> 413. Everything else passes
through unchanged. ``flows.app.uvicorn_launcher`` serves ``app`` in place of MLflow's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]

MLFLOW_APP = "mlflow.pyfunc.scoring_server.app:app"
GUARDED_APP = "flows.app.guard:app"
MAX_BODY_BYTES = int(os.environ.get("RECSYS_SERVE_MAX_BODY_BYTES", 16 * 2**20))
"""Largest request body served (16 MiB; ``RECSYS_SERVE_MAX_BODY_BYTES``)."""


def guard(inner: ASGIApp, max_body: int = MAX_BODY_BYTES) -> ASGIApp:
    """Wrap ``inner`` so that invocations it cannot answer get a 4xx with a JSON message.

    Args:
        inner: the scoring server's ASGI app.
        max_body: largest ``Content-Length`` passed on.
    """
    async def guarded(scope: Scope, receive: Callable[[], Awaitable[Any]],
                      send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "http" and scope.get("path") == "/invocations":
            headers = dict(scope.get("headers") or [])
            refusal = _refusal(headers, max_body)
            if refusal is not None:
                status, message = refusal
                body = json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await inner(scope, receive, send)

    return guarded


def _refusal(headers: dict[bytes, bytes], max_body: int) -> tuple[int, str] | None:
    if not headers.get(b"content-type", b"").strip():
        return 415, ("give a Content-Type: application/json (or text/csv) header with the "
                     "request")
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > max_body:
        return 413, f"the request body is {int(length)} bytes; at most {max_body}"
    return None


def __getattr__(name: str) -> Any:
    """``app``: MLflow's scoring app, guarded (imported on first use: it loads the model)."""
    if name != "app":
        raise AttributeError(name)
    from mlflow.pyfunc.scoring_server.app import app as mlflow_app

    globals()["app"] = guarded_app = guard(mlflow_app)
    return guarded_app
