"""`recsys serve`: the champion behind MLflow's scoring server, over loopback HTTP."""

from __future__ import annotations

import json
import os
import socket
import sys
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
    first = env["PATH"].split(os.pathsep)[0]
    assert first == str(Path(sys.executable).parent) and env["OMP_NUM_THREADS"] == "1"
    assert env["MLFLOW_TRACKING_URI"] == settings.tracking_uri
    several = server_env(settings, workers=2)["PATH"].split(os.pathsep)
    assert several[0] == str(launcher_dir(settings)) and several[1] == first


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
