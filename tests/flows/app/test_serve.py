"""`recsys serve`: the champion behind MLflow's scoring server, over loopback HTTP."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows.app.serve import (
    launcher_dir,
    server_command,
    server_env,
    start_server,
    stop_server,
    wait_until_ready,
)
from flows.app.uvicorn_launcher import patch, tcp_socket
from recsys_core.config import Settings
from recsys_core.lifecycle import registry
from tests.lifecycle.builders import STRONG, build_run, no_requirement_inference, unique_settings

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: object, raw: bool = False) -> tuple[int, object]:
    data = body if raw else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/invocations", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def split(columns: list[str], *rows: list) -> dict:
    return {"dataframe_split": {"columns": columns, "data": list(rows)}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = build_run(tmp_path_factory.mktemp("serve"))
    settings = unique_settings()
    with no_requirement_inference():
        run.register(run.train(STRONG), settings)  # registered, never promoted
    port = free_port()
    process, version = start_server(settings, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, timeout=90)
        yield url, settings, version, process
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def model(server):
    return registry.load_recommender(server[1], registry.CHAMPION)


def test_first_registered_version_became_champion(server) -> None:
    _, settings, version, _ = server
    found = registry.alias_version(registry.client(settings), settings.model_name,
                                   registry.CHAMPION)
    assert version == "1" and str(found.version) == "1"


def test_known_user_gets_the_models_top_k(server, model) -> None:
    status, body = post(server[0], split(["user_id", "k"], ["u1", 5]))
    assert status == 200
    rows = body["predictions"]
    expected = model.recommend("u1", 5)
    assert [r["item_id"] for r in rows] == [r.item_id for r in expected]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["score"] for r in rows] == pytest.approx([r.score for r in expected], rel=1e-5)
    assert not any(r["fallback"] for r in rows)
    assert set(rows[0]["contributions"]) == set(STRONG)
    assert sum(rows[0]["contributions"].values()) == pytest.approx(rows[0]["score"], rel=1e-4)


def test_recent_items_text_query_and_unknown_user(server, model) -> None:
    url = server[0]
    status, body = post(url, split(["recent_items", "k"], [["i1", "i2"], 4]))
    assert status == 200
    items = [r["item_id"] for r in body["predictions"]]
    assert items == [r.item_id for r in model.recommend(None, 4, recent_items=["i1", "i2"])]
    assert not {"i1", "i2"} & set(items)
    assert not any(r["fallback"] for r in body["predictions"])

    status, body = post(url, split(["query", "k"], ["camping gear for the outdoors", 3]))
    assert status == 200 and len(body["predictions"]) == 3
    assert all(set(r["contributions"]) == {"query"} for r in body["predictions"])
    expected = model.recommend(query="camping gear for the outdoors", k=3)
    assert [r["item_id"] for r in body["predictions"]] == [r.item_id for r in expected]

    status, body = post(url, split(["user_id", "k"], ["nobody-knows-me", 3]))
    assert status == 200
    assert all(r["fallback"] for r in body["predictions"]) and len(body["predictions"]) == 3

    # mixed rows: MLflow's parser needs explicit nulls for the fields a record lacks
    status, body = post(url, {"dataframe_records": [
        {"user_id": "u1", "recent_items": None, "k": 2},
        {"user_id": None, "recent_items": ["i3"], "k": 2}]})
    assert status == 200 and [r["request"] for r in body["predictions"]] == [0, 0, 1, 1]


@pytest.mark.parametrize(("body", "raw", "fragment"), [
    (split(["user_id", "k"], ["u1", 0]), False, "field 'k'"),
    (split(["user_id", "k"], ["u1", -5]), False, "field 'k'"),
    (split(["user_id", "k"], ["u1", 10**6]), False, "field 'k'"),
    (split(["user_id", "k"], ["u1", "ten"]), False, "k"),
    (split(["k"], [10]), False, "none of the fields 'user_id'"),
    (split(["user_id", "k"], ["", 10]), False, "field 'user_id' is empty"),
    (split(["user_id", "k"], [["u1"], 10]), False, "field 'user_id' must be a string"),
    (split(["recent_items", "k"], ["i1,i2", 10]), False, "recent_items"),
    (split(["query", "user_id"], ["camping", "u1"]), False, "give either 'query'"),
    (split(["user_id", "k"], ["u1"]), False, "dataframe"),
    ({"dataframe_split": {"columns": ["user_id"]}}, False, "data"),
    ({"rows": [["u1", 10]]}, False, "dataframe_split"),
    (b'{"dataframe_split": {"columns": ["user_id", "k"], "data": [["u1", 10]]', True, "JSON"),
    (b"\xff\xfe not json", True, "JSON"),
])
def test_bad_requests_get_400_with_a_message_and_the_server_stays_up(
        server, body, raw, fragment) -> None:
    url, _, _, process = server
    status, message = post(url, body, raw=raw)
    assert status == 400, message
    assert fragment in message
    assert process.poll() is None
    with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
        assert response.status == 200
    assert post(url, split(["user_id", "k"], ["u1", 1]))[0] == 200


def test_server_command_and_environment(monkeypatch) -> None:
    command = server_command("models:/m@champion", "127.0.0.1", 8123, 2)
    assert command[1:5] == ["-m", "mlflow", "models", "serve"]
    assert command[command.index("--env-manager") + 1] == "local"
    assert command[command.index("-h") + 1] == "127.0.0.1"
    assert command[command.index("-p") + 1] == "8123"
    assert command[command.index("-w") + 1] == "2"
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    settings = Settings()
    env = server_env(settings)
    path = env["PATH"].split(os.pathsep)
    assert path[:2] == [str(launcher_dir(settings)), str(Path(sys.executable).parent)]
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["MLFLOW_TRACKING_URI"] == settings.tracking_uri


def test_launcher_keeps_tcp_nodelay_for_several_workers(monkeypatch) -> None:
    import uvicorn.config

    script = launcher_dir(Settings()) / "uvicorn"
    text = script.read_text()
    assert text.startswith(f"#!{sys.executable}") and os.access(script, os.X_OK)
    assert 'if __name__ == "__main__":' in text  # spawned workers re-import the script
    monkeypatch.setattr(uvicorn.config, "socket", uvicorn.config.socket)
    patch()
    config = uvicorn.config.Config("mlflow.pyfunc.scoring_server.app:app", host="127.0.0.1",
                                   port=0)
    sock = config.bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP  # accepted sockets inherit it -> NODELAY
    finally:
        sock.close()
    with tcp_socket(socket.AF_INET, socket.SOCK_STREAM) as plain:
        assert plain.proto == socket.IPPROTO_TCP
    with tcp_socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
        assert unix.proto == 0


def test_serving_without_any_version_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match="run `recsys train` first"):
        start_server(unique_settings(), port=free_port())


def test_sigterm_stops_the_server_process(monkeypatch) -> None:
    import signal
    import subprocess
    import threading

    import flows.app.serve as serve_module

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(serve_module, "start_server", lambda *args, **kwargs: (child, "7"))
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = serve_module.serve(port=free_port())
    finally:
        timer.cancel()
        if child.poll() is None:
            child.kill()
    assert code == -signal.SIGTERM and child.poll() is not None
    assert signal.getsignal(signal.SIGTERM) is before


# --------------------------------------------------------------------- abuse: fuzz and load

FUZZ_BODIES = 1000
LOAD_S, LOAD_CONNECTIONS = 30.0, 8
MEMORY_SLACK = 0.20
MB = 1 << 20


def server_rss(process) -> int:
    """Resident memory of the server and its workers (``mlflow models serve`` spawns uvicorn)."""
    import psutil

    root = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def _value(rng, depth: int = 0) -> object:
    kind = rng.integers(11 if depth < 2 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(2))
    if kind == 2:
        return int(rng.choice([0, -1, 1, 10, 1000, 1001, 2**31, 2**63, -(2**63), 10**30]))
    if kind == 3:
        return float(rng.choice([0.5, -3.2, 1e308, -1e308, 1e-300, float("nan"), float("inf")]))
    if kind in (4, 5, 6):
        size = int(rng.choice([0, 1, 5, 40]))
        return "".join(chr(int(c)) for c in rng.integers(32, 0x2FFF, size))
    if kind == 7:
        return f"u{rng.integers(100)}"
    if kind == 8:
        return [_value(rng, depth + 1) for _ in range(int(rng.integers(4)))]
    if kind == 9:
        return {f"k{i}": _value(rng, depth + 1) for i in range(int(rng.integers(3)))}
    return [f"i{i}" for i in rng.integers(0, 100, int(rng.integers(1, 5)))]


def fuzz_bodies(seed: int = 0, n: int = FUZZ_BODIES) -> list[tuple[bytes, str]]:
    """``n`` malformed request bodies (and content types), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    columns = ["user_id", "recent_items", "query", "k", "unknown", "User_ID", ""]
    bodies: list[tuple[bytes, str]] = []
    for _ in range(n):
        kind = int(rng.integers(10))
        content = "application/json"
        if kind == 0:  # not JSON at all
            body = bytes(rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8))
        elif kind == 1:  # JSON cut short
            full = json.dumps(split(["user_id", "k"], ["u1", 5])).encode()
            body = full[:int(rng.integers(1, len(full)))]
        elif kind == 2:  # JSON of the wrong shape
            body = json.dumps(_value(rng)).encode()
        elif kind == 3:  # wrong top-level keys or values
            key = str(rng.choice(["dataframe_split", "dataframe_records", "instances",
                                  "inputs", "rows", "dataframe_split "]))
            body = json.dumps({key: _value(rng)}).encode()
        elif kind in (4, 5):  # a split frame with random columns and typed chaos
            names = list(rng.choice(columns, int(rng.integers(1, 5)), replace=False))
            data = [[_value(rng) for _ in names] for _ in range(int(rng.integers(0, 4)))]
            if rng.integers(4) == 0 and data:
                data[0] = data[0][:-1]  # a short row
            body = json.dumps({"dataframe_split": {"columns": names, "data": data}}).encode()
        elif kind == 6:  # records with random fields
            records = [{str(rng.choice(columns)): _value(rng) for _ in range(3)}
                       for _ in range(int(rng.integers(1, 4)))]
            body = json.dumps({"dataframe_records": records}).encode()
        elif kind == 7:  # huge k, huge lists of recent items
            big = int(rng.choice([1001, 5000, 100_000]))
            body = json.dumps(split(["user_id", "recent_items", "k"], [
                None, [f"i{i % 100}" for i in range(big)],
                int(rng.choice([10**6, 2**62, -5, 1000]))])).encode()
        elif kind == 8:  # 1 MB strings where ids and queries go
            field = str(rng.choice(["user_id", "query", "recent_items"]))
            huge = "x" * MB
            body = json.dumps(split([field, "k"], [[huge] if field == "recent_items" else huge,
                                                   3])).encode()
        else:  # a fine body under a wrong or missing content type
            body = json.dumps(split(["user_id", "k"], ["u1", 3])).encode()
            content = str(rng.choice(["text/csv", "text/plain", "application/x-www-form-"
                                      "urlencoded", ""]))
        bodies.append((body, content))
    return bodies


def send(connection, body: bytes, content: str) -> int:
    headers = {"Content-Type": content} if content else {}
    connection.request("POST", "/invocations", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def test_fuzzed_bodies_get_4xx_never_5xx_and_memory_holds(server) -> None:
    import http.client
    from collections import Counter

    url, _, _, process = server
    host, port = url.removeprefix("http://").split(":")
    for body in (split(["user_id", "k"], ["u1", 3]), split(["recent_items"], [["i1"]]),
                 split(["query", "k"], ["tent", 2])):  # warm every path (the encoder loads)
        assert post(url, body)[0] == 200
    start_rss = server_rss(process)
    statuses: Counter[int] = Counter()
    five_xx: list[tuple[int, bytes]] = []
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    began = time.monotonic()
    for body, content in fuzz_bodies():
        try:
            status = send(connection, body, content)
        except (ConnectionError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            status = -1
        statuses[status] += 1
        if status >= 500 or status < 0:
            five_xx.append((status, content, body[:300]))
    connection.close()
    seconds = time.monotonic() - began
    end_rss = server_rss(process)
    print(f"\nfuzz: {sum(statuses.values())} bodies in {seconds:.1f}s, statuses "
          f"{dict(sorted(statuses.items()))}, rss {start_rss / MB:.0f} -> {end_rss / MB:.0f} MB")
    assert process.poll() is None and not five_xx, five_xx[:5]
    assert set(statuses) <= {200, 400, 415, 422}
    assert post(url, split(["user_id", "k"], ["u1", 1]))[0] == 200
    assert end_rss <= start_rss * (1 + MEMORY_SLACK)


def test_load_of_8_connections_for_30s_has_no_5xx_and_memory_holds(server) -> None:
    import http.client
    import threading

    url, _, _, process = server
    host, port = url.removeprefix("http://").split(":")
    bodies = [json.dumps(b).encode() for b in (
        split(["user_id", "k"], ["u1", 10]), split(["user_id", "k"], ["u42", 5]),
        split(["user_id", "k"], ["nobody", 10]), split(["recent_items", "k"], [["i1", "i2"], 5]),
        {"dataframe_records": [{"user_id": "u3", "k": 3}, {"user_id": "u4", "k": 3}]})]
    start_rss = server_rss(process)
    samples = [start_rss]
    counts = {"ok": 0, "4xx": 0, "5xx": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.monotonic() + LOAD_S

    def client(worker: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        sent = 0
        while time.monotonic() < stop:
            try:
                status = send(connection, bodies[(worker + sent) % len(bodies)],
                              "application/json")
                key = "ok" if status < 400 else "4xx" if status < 500 else "5xx"
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                key = "errors"
            sent += 1
            with lock:
                counts[key] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(LOAD_CONNECTIONS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        samples.append(server_rss(process))
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - began
    total = sum(counts.values())
    print(f"\nload: {total} requests over {LOAD_CONNECTIONS} connections in {seconds:.1f}s "
          f"({total / seconds:.0f} req/s), {counts}, rss {start_rss / MB:.0f} -> "
          f"{samples[-1] / MB:.0f} MB (max {max(samples) / MB:.0f})")
    assert process.poll() is None
    assert counts["5xx"] == 0 and counts["errors"] == 0 and counts["4xx"] == 0
    assert counts["ok"] > LOAD_CONNECTIONS
    assert max(samples) <= start_rss * (1 + MEMORY_SLACK)


def test_the_guard_answers_what_mlflow_would_crash_on() -> None:
    import asyncio

    from flows.app.guard import guard

    async def inner(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def call(headers: list[tuple[bytes, bytes]], path: str = "/invocations") -> tuple[int, bytes]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "path": path, "method": "POST", "headers": headers}
        asyncio.run(guard(inner, max_body=100)(scope, receive, send))
        return sent[0]["status"], sent[1]["body"]

    status, body = call([])
    assert status == 415 and b"Content-Type" in body
    assert call([(b"content-type", b"  ")])[0] == 415
    status, body = call([(b"content-type", b"application/json"), (b"content-length", b"101")])
    assert status == 413 and b"at most 100" in body
    assert call([(b"content-type", b"application/json"), (b"content-length", b"100")])[0] == 200
    assert call([], path="/ping")[0] == 200  # only invocations are guarded
