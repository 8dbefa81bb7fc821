"""The deployments in ``prefect.yaml``: apply them to a Prefect API, or serve them in process."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import serve as prefect_serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from prefect.settings import get_current_settings
from prefect.workers.process import ProcessWorker

PROJECT = Path(__file__).resolve().parents[2]
PREFECT_FILE = PROJECT / "prefect.yaml"


def load_spec(prefect_file: Path = PREFECT_FILE) -> list[dict[str, Any]]:
    """The deployments of a ``prefect.yaml`` (YAML anchors resolved)."""
    return yaml.safe_load(prefect_file.read_text())["deployments"]


def ensure_work_pool(name: str) -> bool:
    """Create the ``process`` work pool ``name`` unless it exists; returns whether it was made."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=name, type=ProcessWorker.type,
                base_job_template=ProcessWorker.get_default_base_job_template()))
            return True


def deploy(prefect_file: Path = PREFECT_FILE) -> list[str]:
    """Create missing work pools, then ``prefect deploy --all``; returns ``flow/deployment`` names.

    Runs from the project folder, which Prefect's default pull step makes the workers' working
    directory.

    Raises:
        RuntimeError: no Prefect API is configured (a temporary one would forget the
            deployments), or ``prefect deploy`` failed (its output is in the message).
    """
    if not get_current_settings().api.url:
        raise RuntimeError("PREFECT_API_URL is not set: start a server (`prefect server start`) "
                           "and point PREFECT_API_URL at it, or serve with `recsys deploy --serve`")
    spec = load_spec(prefect_file)
    for pool in sorted({item["work_pool"]["name"] for item in spec}):
        ensure_work_pool(pool)
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all",
         "--prefect-file", str(prefect_file.resolve())],
        cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{done.stdout}\n{done.stderr}")
    return [f"{_flow(item).name}/{item['name']}" for item in spec]


def runner_deployments(prefect_file: Path = PREFECT_FILE) -> list[RunnerDeployment]:
    """The deployments of ``prefect.yaml`` (names, schedules, parameters) for ``serve``."""
    return [_flow(item).to_deployment(
        item["name"], parameters=item.get("parameters"), description=item.get("description"),
        tags=item.get("tags"), concurrency_limit=item.get("concurrency_limit"),
        schedules=[Cron(s["cron"], timezone=s.get("timezone")) for s in item.get("schedules", [])])
        for item in load_spec(prefect_file)]


def serve(prefect_file: Path = PREFECT_FILE) -> None:
    """Serve every deployment from this process until interrupted (no work pool, no worker)."""
    prefect_serve(*runner_deployments(prefect_file))


def _flow(item: dict[str, Any]) -> Any:
    path, name = item["entrypoint"].rsplit(":", 1)
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)
