"""Serving the champion over HTTP (``recsys serve``): ``flows.app.server`` on uvicorn.

The server speaks MLflow's scoring protocol (``GET /ping``, ``POST /invocations`` taking
``{"dataframe_split": {"columns": ["user_id", "k"], "data": [["196", 10]]}}`` or
``dataframe_records``, answering ``{"predictions": [...]}``; a bad request gets HTTP 400 with a
message) and answers known users from the version's precomputed lists, folding in events
appended since its training snapshot. The alias is resolved when the server starts: restart it
to serve a newly promoted champion.
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

from recsys_core.config import Settings, get_settings
from recsys_core.lifecycle import registry, served

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Pinned to 1 in the server unless set: one request's math is too small to share out, and
threads of concurrent requests (and workers) would otherwise fight over the cores."""


def server_command(model_dir: str | Path, version: str, settings: Settings,
                   host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> list[str]:
    """The command line of ``flows.app.server`` serving a local model folder.

    Args:
        model_dir: the version's local model folder (``lifecycle.served.local_folder``).
        version: its version number.
        settings: project settings (the events folder and how often to look at it).
        host: interface to bind (loopback by default).
        port: TCP port.
        workers: worker processes (each loads the model).
    """
    return [sys.executable, "-m", "flows.app.server", "--model-dir", str(model_dir),
            "--version", str(version), "--events-dir", str(settings.events_dir),
            "--poll-s", str(settings.events_poll_s), "--host", host, "--port", str(port),
            "--workers", str(workers)]


def server_env() -> dict[str, str]:
    """The server's environment: this one, with one math thread unless set otherwise."""
    env = dict(os.environ)
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
        workers: worker processes.

    Returns:
        The server process and the champion's version.

    Raises:
        LookupError: nothing is registered yet.
    """
    version = registry.ensure_champion(settings)
    folder = served.local_folder(settings, str(version.version), str(version.run_id))
    command = server_command(folder, str(version.version), settings, host, port, workers)
    return subprocess.Popen(command, env=server_env()), str(version.version)


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
        workers: worker processes.
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
