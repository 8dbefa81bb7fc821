"""The HTTP server of ``recsys serve``: MLflow's scoring protocol in front of a ``ServedModel``.

``mlflow models serve`` turns every request into a pandas frame, checks it against the
signature and turns the answer into another frame: on two cores that alone capped it near 220
requests/s with the model answering in 4.5 ms, and below the 500 requests/s asked of answers
that now take 0.1 ms (known users from precomputed lists). This ASGI app keeps the protocol and
drops the frames:

- ``GET /ping`` and ``GET /health``: 200 once the model is loaded; ``GET /version``: the
  served model version;
- ``POST /invocations`` with ``Content-Type: application/json`` and a body
  ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` or
  ``{"dataframe_records": [{...}, ...]}`` (fields of ``recsys_core.model.requests``), answered
  ``{"predictions": [{"request": 0, "user_id": ..., "rank": 1, ...}, ...]}``;
- a bad body or row: 400 ``{"error_code": ..., "message": ...}``, the message naming the row
  and field; no content type, or another than JSON: 415; a body over ``--max-body`` bytes: 413.

Each worker process opens the version's local model folder (``lifecycle.served``), loads the
model and its text encoder before it accepts connections, and answers in its event loop.
Started by ``flows.app.serve`` as ``python -m flows.app.server``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from recsys_core.model.requests import OUTPUT_COLUMNS, RequestError, answer
from recsys_core.model.serving import ServedModel

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 16 * 2**20
"""Largest request body served by default (16 MiB)."""
ENV = "RECSYS_SERVER_CONFIG"
"""The worker configuration (JSON) ``main`` hands to ``create_app`` in every worker."""
FORMATS = ("dataframe_split", "dataframe_records")
_JSON = [(b"content-type", b"application/json")]


class Refused(Exception):
    """A request answered with an error status before the model sees it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class App:
    """The ASGI application.

    Args:
        served: what answers requests.
        version: the served model version (``GET /version``).
        max_body: largest request body in bytes.
    """

    def __init__(self, served: ServedModel, version: str, max_body: int = MAX_BODY_BYTES
                 ) -> None:
        self.served = served
        self.version = version
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request (other ASGI scopes are ignored)."""
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                return await _send(send, 405, _error("BAD_REQUEST", "POST a JSON body"))
            try:
                body = self._invoke(scope, await self._body(scope, receive))
            except Refused as refused:
                return await _send(send, refused.status, _error(refused.code, str(refused)))
            except Exception as error:  # a bug, not the client's fault: 500, logged
                log.exception("invocation failed")
                return await _send(send, 500, _error("INTERNAL_ERROR", str(error)))
            return await _send(send, 200, body)
        if method != "GET":
            return await _send(send, 405, _error("BAD_REQUEST", f"{path} answers GET"))
        if path in ("/ping", "/health"):
            return await _send(send, 200, b"\n", [(b"content-type", b"text/plain")])
        if path == "/version":
            return await _send(send, 200, json.dumps({"model_version": self.version}).encode())
        return await _send(send, 404, _error("ENDPOINT_NOT_FOUND", f"no endpoint {path}"))

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        headers = dict(scope["headers"])
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not media:
            raise Refused(415, "BAD_REQUEST", "give a Content-Type: application/json header "
                                              "with the request")
        if media != b"application/json":
            raise Refused(415, "BAD_REQUEST", f"content type {media.decode(errors='replace')!r}"
                                              " is not served: send application/json")
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            raise Refused(413, "BAD_REQUEST",
                          f"the request body is {int(length)} bytes; at most {self.max_body}")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused(400, "BAD_REQUEST", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise Refused(413, "BAD_REQUEST", f"the request body is over {self.max_body} "
                                                  "bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _invoke(self, scope: Scope, body: bytes) -> bytes:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise Refused(400, "BAD_REQUEST", f"the request body is not valid JSON: {error}")\
                from error
        rows, fields = request_rows(payload)
        try:
            out = answer(self.served, rows, fields)
        except RequestError as error:
            raise Refused(400, "INVALID_PARAMETER_VALUE", str(error)) from error
        return json.dumps({"predictions": [dict(zip(OUTPUT_COLUMNS, row, strict=True))
                                           for row in out]}).encode()


def request_rows(payload: object) -> tuple[list[dict[str, object]], list[str]]:
    """The request rows of an MLflow JSON body, and the fields it names.

    Args:
        payload: the parsed body.

    Raises:
        Refused: 400 when the body is not one of MLflow's dataframe formats.
    """
    keys = sorted(payload) if isinstance(payload, dict) else []
    given = [key for key in keys if key != "params"]
    if len(given) != 1 or given[0] not in FORMATS or not isinstance(payload, dict):
        raise Refused(400, "BAD_REQUEST", "the body must be a JSON object with exactly one of "
                                          f"the fields {', '.join(map(repr, FORMATS))}, "
                                          f"got {given or type(payload).__name__}")
    frame = payload[given[0]]
    if given[0] == "dataframe_records":
        if not isinstance(frame, list) or not all(isinstance(row, dict) for row in frame):
            raise Refused(400, "BAD_REQUEST", "'dataframe_records' must be a list of objects "
                                              "(field -> value)")
        return frame, sorted({str(name) for row in frame for name in row})
    columns = frame.get("columns") if isinstance(frame, dict) else None
    data = frame.get("data") if isinstance(frame, dict) else None
    if not isinstance(columns, list) or not isinstance(data, list) \
            or not all(isinstance(c, str) for c in columns):
        raise Refused(400, "BAD_REQUEST", "'dataframe_split' needs 'columns' (a list of names) "
                                          "and 'data' (a list of rows)")
    if len(set(columns)) != len(columns):
        raise Refused(400, "BAD_REQUEST", f"'dataframe_split' names a column twice: {columns}")
    for position, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise Refused(400, "BAD_REQUEST", f"'dataframe_split' row {position} must be a list "
                                              f"of {len(columns)} values (one per column)")
    return [dict(zip(columns, row, strict=True)) for row in data], columns


async def _send(send: Send, status: int, body: bytes,
                headers: list[tuple[bytes, bytes]] = _JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "message": message}).encode()


def create_app() -> App:
    """The app of one worker, from the configuration ``main`` put in ``ENV``."""
    config = json.loads(os.environ[ENV])
    served = ServedModel.open(config["model_dir"], config["events_dir"], config["poll_s"])
    try:
        served.warm()
    except Exception as error:  # text queries will fail alone; users are still answered
        log.warning("text encoder not loaded: %s", error)
    gc.freeze()  # the loaded model never changes: keep it out of every later collection
    return App(served, config["version"], config["max_body"])


def main(argv: list[str] | None = None) -> None:
    """Serve a model folder: ``python -m flows.app.server --model-dir DIR --version N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--events-dir")
    parser.add_argument("--poll-s", type=float, default=2.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-body", type=int, default=MAX_BODY_BYTES)
    args = parser.parse_args(argv)
    os.environ[ENV] = json.dumps({"model_dir": args.model_dir, "version": args.version,
                                  "events_dir": args.events_dir, "poll_s": args.poll_s,
                                  "max_body": args.max_body})
    import uvicorn

    from flows.app.uvicorn_launcher import patch

    patch()  # several workers: the socket uvicorn binds keeps TCP_NODELAY
    uvicorn.run("flows.app.server:create_app", factory=True,
                host=args.host, port=args.port, workers=args.workers, lifespan="off",
                access_log=False)


if __name__ == "__main__":
    main()
