"""A training run killed after its fit stage resumes from the cache and ends with the same model.

The first run is a subprocess, SIGKILLed when the flow logs that the sources are trained on
every validation carve's fit part (fusion tuning starts next); the rerun is a subprocess
over the same RECSYS_HOME (the results persisted there); the reference is an uninterrupted
run in a fresh RECSYS_HOME.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    FlowRunFilterParentFlowRunId,
)
from prefect.settings import PREFECT_API_URL
from prefect.tasks import Task

import tasks
from flows.train import train_flow
from recsys_core.training import TrainingConfig
from tasks.common import CACHED
from tests.tiny_bert import build_tiny_model

PARAMS = {"data": "synthetic:2000", "protocol": "stratified", "k": 5, "trials": 3,
          "register_model": False}
CHILD = """
import json, sys
from flows.app.env import apply_defaults
apply_defaults()
from flows.train import train_flow
params = json.loads(sys.argv[1])
train_flow.with_options(flow_run_name=sys.argv[2])(**params)
"""
CARVES = TrainingConfig().carves
CARVES_TRAINED = "sources trained on every validation carve"
TIMEOUT_S = 300


def _child(home: Path, api_url: str, params: dict, name: str) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(RECSYS_HOME=str(home), PREFECT_API_URL=api_url, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(params), name],
                            cwd=Path(__file__).resolve().parents[2], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _cached_stages() -> set[str]:
    """Names of the tasks (in ``tasks``) whose results a rerun may take from the cache."""
    names = set()
    for info in pkgutil.iter_modules(tasks.__path__):
        module = importlib.import_module(f"tasks.{info.name}")
        names |= {obj.name for obj in vars(module).values()
                  if isinstance(obj, Task) and obj.cache_policy is CACHED}
    return names


def _task_states(flow_run_name: str) -> dict[str, list[str]]:
    """Task name -> states of the flow run's tasks and its subflows' tasks (not the wrappers)."""
    with get_client(sync_client=True) as client:
        parent, = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[flow_run_name])))
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])))
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[parent.id, *(run.id for run in subflows)])))
    wrappers = {run.parent_task_run_id for run in subflows}
    states: dict[str, list[str]] = {}
    for run in runs:
        if run.id not in wrappers:
            states.setdefault(run.task_key.rsplit("-", 1)[0], []).append(run.state.name)
    return states


@pytest.fixture(scope="module")
def runs(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("resume")
    params = {**PARAMS, "encoder": str(build_tiny_model(root / "bert")),
              "report_path": str(root / "resumed.json")}
    api_url = PREFECT_API_URL.value()
    killed = _child(root / "home", api_url, params, "killed")
    output = []
    deadline = time.monotonic() + TIMEOUT_S
    for line in killed.stdout:
        output.append(line)
        if CARVES_TRAINED in line or time.monotonic() > deadline:
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL, "".join(output)[-4000:]
    resumed = _child(root / "home", api_url, params, "resumed")
    log, _ = resumed.communicate(timeout=TIMEOUT_S)
    assert resumed.returncode == 0, log[-4000:]
    os.environ["RECSYS_HOME"], home = str(root / "fresh"), os.environ["RECSYS_HOME"]
    try:
        reference = train_flow(**{**params, "report_path": None}).to_json()
    finally:
        os.environ["RECSYS_HOME"] = home
    return {"killed": _task_states("killed"), "resumed": _task_states("resumed"),
            "report": json.loads(Path(params["report_path"]).read_text()),
            "reference": reference}


def test_killed_run_stopped_after_the_fit_stage(runs) -> None:
    killed = runs["killed"]
    assert killed["prepare"] == ["Completed"]
    assert killed["train_source"] == ["Completed"] * len(TrainingConfig().fused_sources) * CARVES
    assert "evaluate" not in killed


def test_rerun_takes_finished_stages_from_the_cache(runs) -> None:
    killed, resumed = runs["killed"], runs["resumed"]
    finished = {stage: states.count("Completed") for stage, states in killed.items()
                if stage in _cached_stages()}
    assert {"prepare", "train_source"} <= set(finished)
    for stage, count in finished.items():
        assert resumed[stage].count("Cached") == count, (stage, killed, resumed)
    assert resumed["tune_fusion"] == ["Completed"] and resumed["evaluate"] == ["Completed"]
    refit = resumed["train_source"].count("Completed")
    assert refit == len(TrainingConfig().sources), resumed["train_source"]


def test_resumed_model_equals_an_uninterrupted_run(runs) -> None:
    report, reference = runs["report"], runs["reference"]
    assert report["fusion"]["weights"] == reference["fusion"]["weights"]
    assert report["models"] == reference["models"]
