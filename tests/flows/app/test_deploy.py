"""prefect.yaml end to end: a real Prefect server, `recsys deploy`, a triggered run, a worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from flows.app.cli import app
from flows.app.deploy import load_spec, runner_deployments
from recsys_core.config import Settings
from recsys_core.training import TrainingConfig
from tests.tiny_bert import build_tiny_model

BIN = Path(sys.executable).parent
STARTUP_S = 180
RUN_S = 420


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on a free loopback port; yields the environment that uses it."""
    root = tmp_path_factory.mktemp("deploy")
    url = f"http://127.0.0.1:{_free_port()}/api"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(PREFECT_HOME=str(root / "prefect"), PREFECT_API_URL=url,
               PREFECT_SERVER_ANALYTICS_ENABLED="false", RECSYS_HOME=str(root / "recsys"),
               PREFECT_LOGGING_EXTRA_LOGGERS="recsys_core", RECSYS_DEVICE="cpu")
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", url.rsplit(":", 1)[1].split("/")[0]],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert process.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"prefect server did not start in {STARTUP_S}s")
        yield env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_served_deployments_mirror_prefect_yaml() -> None:
    spec = {item["name"]: item for item in load_spec()}
    served = {d.name: d for d in runner_deployments()}
    assert set(served) == set(spec) == {"nightly", "ingest", "promote", "batch", "forget"}
    assert served["forget"].schedules == [] and "user_ids" not in spec["forget"]["parameters"]
    assert served["nightly"].parameters == spec["nightly"]["parameters"]
    assert [s.schedule.cron for s in served["nightly"].schedules] == ["0 2 * * *"]
    assert served["promote"].schedules == []
    assert {item["work_pool"]["name"] for item in spec.values()} == {"recsys-process"}


def test_deploy_needs_a_prefect_server() -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["deploy"])
    assert result.exit_code == 2
    assert "PREFECT_API_URL is not set" in result.output and "--serve" in result.output


@pytest.mark.integration
def test_deploy_trigger_and_worker_run_training(server: dict[str, str],
                                                tmp_path: Path) -> None:
    start = time.perf_counter()
    deployed = subprocess.run([BIN / "recsys", "deploy"], env=server, capture_output=True,
                              text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "deployed train/nightly" in deployed.stdout
    encoder = str(build_tiny_model(tmp_path / "bert"))
    with SyncPrefectClient(server["PREFECT_API_URL"]) as client:
        assert client.read_work_pool("recsys-process").type == "process"
        deployment = client.read_deployment_by_name("train/nightly")
        assert deployment.parameters["data_docs"] is True
        run = client.create_flow_run_from_deployment(deployment.id, parameters={
            "data": "synthetic:2000", "k": 5, "trials": 2, "encoder": encoder})
        worker = subprocess.run(
            [BIN / "prefect", "worker", "start", "--pool", "recsys-process", "--run-once"],
            env=server, capture_output=True, text=True, timeout=RUN_S)
        state = client.read_flow_run(run.id).state
        assert state is not None and state.is_completed(), (
            f"{state}\n{worker.stdout[-4000:]}\n{worker.stderr[-4000:]}")
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    print(f"\ndeploy -> trigger -> worker -> Completed: {time.perf_counter() - start:.1f}s")
    by_key = {a.key: a for a in artifacts if a.key}
    assert {"ingest-summary", "test-metrics", "training-report"} <= set(by_key)
    table = json.loads(by_key["test-metrics"].data)
    assert {row["model"] for row in table} >= {"fused", "mostpop", "als"}
    report = by_key["training-report"].data
    for needle in ("## Data", "Validation: **passed**", "[Data Docs](file://", "## Fusion",
                   "promoted to champion", "MLflow run: `runs:/"):
        assert needle in report
    progress = [a for a in artifacts if a.type == "progress"]
    # one per part sources are trained on: each validation carve's fit part, then train (the
    # refit with the baselines)
    assert len(progress) == TrainingConfig().carves + 1
    assert all(a.data == 100.0 for a in progress)
    settings = Settings(home=Path(server["RECSYS_HOME"]))
    versions = MlflowClient(f"sqlite:///{settings.mlflow_db}").search_model_versions(
        "name='recsys-hybrid'")
    assert [str(v.version) for v in versions] == ["1"]
    assert versions[0].run_id in report and versions[0].tags["dataset"].startswith("synthetic")
