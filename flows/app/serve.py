"""Serving the champion over HTTP with ``mlflow models serve`` (``recsys serve``).

The server is MLflow's scoring server (FastAPI on uvicorn): ``GET /ping`` answers when the
model is loaded, ``POST /invocations`` takes ``{"dataframe_split": {"columns": ["user_id",
"k"], "data": [["196", 10]]}}`` (or ``recent_items`` / ``query`` columns) and answers
``{"predictions": [...]}``; a bad request gets HTTP 400 with a message. The alias is resolved
when the server starts: restart it to serve a newly promoted champion.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from flows.app.uvicorn_launcher import LAUNCHER
from recsys_core.config import Settings, get_settings
from recsys_core.lifecycle import registry

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Pinned to 1 in the server unless set: one request's math is too small to share out, and
threads of concurrent requests (and workers) would otherwise fight over the cores."""


def server_command(model_uri: str, host: str = "127.0.0.1", port: int = 5000,
                   workers: int = 1) -> list[str]:
    """The ``mlflow models serve`` command line (local environment, no conda/virtualenv).

    Args:
        model_uri: e.g. ``models:/recsys-hybrid@champion``.
        host: interface to bind (loopback by default).
        port: TCP port.
        workers: uvicorn worker processes (each loads the model).
    """
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
            "--env-manager", "local", "-h", host, "-p", str(port), "-w", str(workers)]


def launcher_dir(settings: Settings) -> Path:
    """A folder holding the ``uvicorn`` launcher (guarded app, TCP_NODELAY with several workers).

    Args:
        settings: project settings (the folder lives under ``RECSYS_HOME``).
    """
    folder = settings.home / "serve-bin"
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "uvicorn"
    text = LAUNCHER.format(python=sys.executable)
    if not script.exists() or script.read_text() != text:
        tmp = folder / ".uvicorn.tmp"
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, script)
    return folder


def server_env(settings: Settings) -> dict[str, str]:
    """The server's environment: launcher and venv bin first on PATH, tracking store, threads.

    MLflow spawns ``uvicorn`` by name: the launcher of ``flows.app.uvicorn_launcher`` comes
    first (it serves MLflow's app behind ``flows.app.guard``, and keeps TCP_NODELAY with
    several workers, uvicorn#3149), then this interpreter's bin folder.

    Args:
        settings: project settings (tracking URI).
    """
    env = dict(os.environ)
    path = [str(launcher_dir(settings)), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    for name in THREAD_VARIABLES:
        env.setdefault(name, "1")
    return env


def start_server(settings: Settings, host: str = "127.0.0.1", port: int = 5000,
                 workers: int = 1) -> tuple[subprocess.Popen, str]:
    """Start serving ``champion`` (the first registered version becomes it when none is).

    Args:
        settings: project settings.
        host: interface to bind.
        port: TCP port.
        workers: uvicorn worker processes.

    Returns:
        The server process and the champion's version.

    Raises:
        LookupError: nothing is registered yet.
    """
    version = registry.ensure_champion(settings)
    command = server_command(registry.model_uri(settings, registry.CHAMPION), host, port,
                             workers)
    return (subprocess.Popen(command, env=server_env(settings)),
            str(version.version))


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``url``/ping until it answers 200.

    Args:
        url: the server's base URL.
        process: the server process (its exit ends the wait with an error).
        timeout: seconds to wait.

    Raises:
        RuntimeError: the server exited or did not answer in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the model server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the model server at {url} did not answer /ping in {timeout:.0f}s")


def stop_server(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """Stop a server from ``start_server``: SIGTERM (uvicorn follows its parent), then kill.

    Args:
        process: the server process.
        timeout: seconds to wait after SIGTERM.
    """
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def serve(host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> int:
    """Serve the champion until interrupted; returns the server's exit code.

    Args:
        host: interface to bind (loopback by default).
        port: TCP port.
        workers: uvicorn worker processes.
    """
    settings = get_settings()
    process, version = start_server(settings, host, port, workers)
    print(f"serving {settings.model_name} version {version} (champion) on http://{host}:{port}"
          f"  (POST /invocations, GET /ping)", flush=True)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a process manager's SIGTERM stops the server like Ctrl-C

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return stop_server(process)
    finally:
        signal.signal(signal.SIGTERM, previous)
