"""`recsys serve`: the champion behind MLflow's scoring protocol, over loopback HTTP."""

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

from data_checks.runner import validate_dataset
from flows.app.serve import (
    server_command,
    server_env,
    start_server,
    stop_server,
    wait_until_ready,
)
from flows.app.uvicorn_launcher import patch, tcp_socket
from recsys_core.config import Settings
from recsys_core.data.loaders import read_dataset
from recsys_core.lifecycle import registry
from recsys_core.model.events import write_events
from recsys_core.warehouse.store import Warehouse
from tests.lifecycle.builders import (
    STRONG,
    TOP_K,
    build_run,
    unique_settings,
)

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
def registered(tmp_path_factory):
    """A trained run and the settings its version (never promoted) is registered under."""
    run = build_run(tmp_path_factory.mktemp("serve"))
    settings = unique_settings()
    run.register(run.train(STRONG), settings)
    return run, settings


@pytest.fixture(scope="module")
def server(registered):
    _, settings = registered
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


def test_server_command_and_environment(monkeypatch, tmp_path) -> None:
    settings = Settings(home=tmp_path, events_poll_s=0.5)
    command = server_command(tmp_path / "model", "3", settings, "127.0.0.1", 8123, 2)
    assert command[:3] == [sys.executable, "-m", "flows.app.server"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options == {"--model-dir": str(tmp_path / "model"), "--version": "3",
                       "--events-dir": str(settings.events_dir), "--poll-s": "0.5",
                       "--host": "127.0.0.1", "--port": "8123", "--workers": "2"}
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    env = server_env()
    assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "3"


def test_launcher_keeps_tcp_nodelay_for_several_workers(monkeypatch) -> None:
    import uvicorn.config

    monkeypatch.setattr(uvicorn.config, "socket", uvicorn.config.socket)
    patch()
    config = uvicorn.config.Config("flows.app.server:create_app", host="127.0.0.1", port=0)
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
    """Resident memory of the server process and its workers."""
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


# ------------------------------------------------- precomputed lists, protocol, fresh events


def test_known_users_get_what_the_model_computes_online(server, model) -> None:
    # The lists were scored in blocks of users, online one user: float32 matrix products of
    # other shapes round differently in the 7th digit (3e-7 here), and z-scoring the tiny
    # random encoder's near-equal cosines (sd 0.002) magnifies that to 1e-4: values agree to
    # 1e-3, the order exactly.
    url = server[0]
    users = [str(u) for u in model.users.ids[:25]]
    for k in (1, 10, TOP_K, TOP_K + 5):  # up to K from the version's lists, then online
        status, body = post(url, {"dataframe_records": [{"user_id": u, "k": k} for u in users]})
        assert status == 200
        rows = body["predictions"]
        for position, user in enumerate(users):
            got = [r for r in rows if r["request"] == position]
            expected = model.recommend(user, k)
            assert [r["item_id"] for r in got] == [r.item_id for r in expected]
            assert [r["title"] for r in got] == [r.title for r in expected]
            assert [r["score"] for r in got] == pytest.approx([r.score for r in expected],
                                                              rel=1e-6, abs=1e-3)
            for row, rec in zip(got, expected, strict=True):
                assert row["contributions"] == pytest.approx(rec.contributions, rel=1e-6,
                                                             abs=1e-3)


def raw_request(url: str, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    import http.client

    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_protocol_endpoints_and_refusals(server) -> None:
    url, _, version, _ = server
    assert raw_request(url, "GET", "/health")[0] == 200
    status, body = raw_request(url, "GET", "/version")
    assert status == 200 and json.loads(body) == {"model_version": version}
    assert raw_request(url, "GET", "/nowhere")[0] == 404
    assert raw_request(url, "GET", "/invocations")[0] == 405
    good = json.dumps(split(["user_id", "k"], ["u1", 2])).encode()
    status, body = raw_request(url, "POST", "/invocations", good)  # no content type
    assert status == 415 and b"Content-Type" in body
    status, body = raw_request(url, "POST", "/invocations", good, {"Content-Type": "text/plain"})
    assert status == 415 and b"application/json" in body
    status, body = raw_request(url, "POST", "/invocations", b"",
                               {"Content-Type": "application/json",
                                "Content-Length": str(64 * 2**20)})
    assert status == 413 and b"at most" in body
    status, body = raw_request(url, "POST", "/invocations", good,
                               {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200 and len(json.loads(body)["predictions"]) == 2
    status, body = raw_request(url, "POST", "/invocations",
                               json.dumps({"dataframe_records": [{"user_id": "u1"},
                                                                 {"query": "tent", "k": 1}],
                                           "params": {}}).encode(),
                               {"Content-Type": "application/json"})
    assert status == 200  # records may leave fields out
    assert [r["request"] for r in json.loads(body)["predictions"]] == [0] * 10 + [1]


@pytest.fixture(scope="module")
def fresh_server(registered, tmp_path_factory):
    """A second server of the same version, following its own events folder."""
    run, registered_settings = registered
    settings = Settings(home=tmp_path_factory.mktemp("fresh-home"),
                        model_name=registered_settings.model_name, events_poll_s=0.5)
    port = free_port()
    process, _ = start_server(settings, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, timeout=90)
        yield url, settings, process
    finally:
        stop_server(process)


def append_events(run, settings: Settings, folder: Path, rows: list[tuple[str, str]]) -> Path:
    """What `recsys ingest --data DIR --append` does: validate, append, export the new events."""
    folder.mkdir()
    now = int(time.time()) - len(rows)
    (folder / "interactions.csv").write_text(
        "user_id,item_id,timestamp\n" + "".join(f"{u},{i},{now + n}\n"
                                                for n, (u, i) in enumerate(rows)))
    (folder / "items.csv").write_text("item_id,title\n")
    warehouse = Warehouse(run.settings.warehouse_path)
    base = warehouse.latest_snapshot()
    result = validate_dataset(read_dataset(str(folder)), 0.2, row_bounds={"items": (0, None)},
                              known_item_ids=warehouse.items(base)["item_id"].to_list())
    result.raise_if_failed()
    snapshot = warehouse.append(result.dataset, result.quarantine, base=base)
    parent, added = warehouse.appended(snapshot)
    assert parent == base and added.height == len(rows)
    return write_events(settings.events_dir, parent, snapshot, added)


def test_new_events_reach_the_running_server_without_a_restart(fresh_server, model, registered,
                                                               tmp_path) -> None:
    url, settings, process = fresh_server
    run, _ = registered
    user, n_items = "u7", len(model.items)

    def ranking(k: int) -> list[str]:
        status, body = post(url, split(["user_id", "k"], [user, k]))
        assert status == 200
        return [r["item_id"] for r in body["predictions"]]

    before = ranking(10)
    assert before == [r.item_id for r in model.recommend(user, 10)]
    watched = before[0]  # the user watches their best recommendation
    neighbour = next(r.item_id for r in model.similar_items(watched, n_items)
                     if r.item_id in [x.item_id for x in model.recommend(user, n_items)])
    full_before = [r.item_id for r in model.recommend(user, n_items)]
    append_events(run, settings, tmp_path / "increment", [(user, watched)])
    started = time.monotonic()
    after = ranking(10)
    while after == before and time.monotonic() - started < 60:
        time.sleep(0.2)
        after = ranking(10)
    print(f"\nthe new event reached the server in {time.monotonic() - started:.1f}s")
    assert time.monotonic() - started < 60 and process.poll() is None  # no restart
    assert watched not in after
    folded = model.recommend(user, 10, recent_items=[watched])
    assert after == [r.item_id for r in folded]
    full_after = ranking(min(n_items, 1000))
    assert full_after.index(neighbour) < full_before.index(neighbour)  # its neighbour moves up
    # a user the model never saw, appended later, gets personal recommendations
    append_events(run, settings, tmp_path / "newcomer", [("newcomer-1", watched)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = post(url, split(["user_id", "k"], ["newcomer-1", 5]))
        if not body["predictions"][0]["fallback"]:
            break
        time.sleep(0.2)
    expected = model.recommend(None, 5, recent_items=[watched])
    assert [r["item_id"] for r in body["predictions"]] == [r.item_id for r in expected]
