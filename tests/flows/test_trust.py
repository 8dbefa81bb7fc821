"""Trust end to end on one RECSYS_HOME: faults at the start of training, two trainings at once,
then a user served, forgotten, and searched for byte by byte everywhere the product writes.

The fixture runs the story once, in order, and records what each step saw:

1. ``recsys train --encoder`` a path that does not exist: a one-line error, nothing written;
2. the same training twice at once (a scheduled and an ad-hoc run, as subprocesses on the
   same state folder): the second waits for the first, both register a version;
3. the batch flow writes every user's top-k (Parquet and the warehouse table);
4. the served champion personalises for the user; ``recsys forget`` erases the user; served
   again (a restarted server), the user gets the flagged popular fallback;
5. a second ``recsys forget`` of the same user removes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from flows.app.cli import app
from flows.app.serve import start_server, stop_server, wait_until_ready
from flows.batch import batch_flow
from recsys_core.config import Settings
from recsys_core.data.loaders import read_dataset
from recsys_core.lifecycle import erasure, registry
from recsys_core.warehouse import Warehouse
from tests.flows.app.test_serve import free_port, post, split
from tests.tiny_bert import build_tiny_model

USER = "forget-me-7f3a9c2e"
"""The user to erase: an id long enough that no byte search finds it by chance."""
NEEDLE = USER.encode()
CHILD = """
import json, sys
from flows.app.env import apply_defaults
apply_defaults()
from flows.train import train_flow
train_flow.with_options(flow_run_name=sys.argv[2])(**json.loads(sys.argv[1]))
"""
TIMEOUT_S = 480


def write_dataset(folder: Path) -> None:
    """Synthetic data in the generic layout, with user u7 renamed to ``USER``.

    60 users: no layer of the default sources is 60 wide, so the champion can drop the user
    (a users-long axis it cannot tell apart would make the erasure retrain instead).
    """
    data = read_dataset("synthetic:1800")
    folder.mkdir(parents=True)
    data.interactions.with_columns(
        pl.when(pl.col("user_id") == "u7").then(pl.lit(USER)).otherwise(pl.col("user_id"))
        .alias("user_id"),
    ).select("user_id", "item_id", pl.col("ts").alias("timestamp"), "event", "weight"
             ).write_csv(folder / "interactions.csv")
    data.items.select("item_id", "title", "text").write_csv(folder / "items.csv")


def train_child(home: Path, params: dict, name: str) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "MLFLOW_", "RECSYS_"))}
    env.update(RECSYS_HOME=str(home), PREFECT_API_URL=PREFECT_API_URL.value(),
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(params), name],
                            cwd=Path(__file__).resolve().parents[2], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def served(settings: Settings, body: dict) -> list[dict]:
    port = free_port()
    process, _ = start_server(settings, "127.0.0.1", port)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, timeout=120)
        status, answer = post(f"http://127.0.0.1:{port}", body)
    finally:
        stop_server(process)
    assert status == 200, answer
    assert isinstance(answer, dict)
    return answer["predictions"]


@pytest.fixture(scope="module")
def story(prefect_harness, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("trust")
    home, data = root / "home", root / "data"
    write_dataset(data)
    encoder = str(build_tiny_model(root / "bert"))
    out: dict = {"home": home}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RECSYS_HOME", str(home))
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        settings = Settings()
        cli = CliRunner()

        missing = cli.invoke(app, ["train", "--data", str(data), "--encoder",
                                   str(root / "no-such-encoder")])
        out["missing_encoder"] = (missing.exit_code, missing.output,
                                  Warehouse(settings.warehouse_path).batches().height,
                                  sorted(p.name for p in settings.runs_dir.glob("*")))

        params = {"data": str(data), "k": 5, "trials": 1, "encoder": encoder}
        runs = {name: train_child(home, params, name) for name in ("nightly", "adhoc")}
        out["train_logs"] = {name: run.communicate(timeout=TIMEOUT_S)[0]
                             for name, run in runs.items()}
        out["train_codes"] = {name: run.returncode for name, run in runs.items()}
        assert set(out["train_codes"].values()) == {0}, {
            name: log[-3000:] for name, log in out["train_logs"].items()}
        out["versions_before"] = [str(v.version) for v in registry.versions(settings)]
        out["batches_before"] = Warehouse(settings.warehouse_path).batches().height

        batch_flow(k=5)
        out["before"] = {path: path.read_bytes().count(NEEDLE) for path in files(home)}
        query = split(["user_id", "k"], [USER, 3])
        out["served_before"] = served(settings, query)

        out["forget"] = cli.invoke(app, ["forget", USER, "nobody-at-all", "--reason",
                                         "ticket 7"])
        out["served_after"] = served(settings, query)
        out["recommend"] = cli.invoke(app, ["recommend", USER, "--k", "3"])
        out["forget_again"] = cli.invoke(app, ["forget", USER, "--reason", "ticket 7"])
        out["audit"] = erasure.audit(settings)
        out["settings"] = settings
        out["mlflow"] = MlflowClient(settings.tracking_uri)
        yield out


def files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file())


def test_a_missing_encoder_path_fails_in_one_line_before_writing_anything(story) -> None:
    code, output, batches, runs = story["missing_encoder"]
    assert code == 2
    message = output.strip().splitlines()[-1]
    assert message.startswith("error: encoder") and "no-such-encoder" in message
    assert "no such folder" in message
    assert batches == 0 and runs == []  # the rerun (below) starts from a clean folder


def test_two_trainings_at_once_one_waits_both_register(story) -> None:
    logs = story["train_logs"]
    waited = [name for name, log in logs.items() if "is in use by flow train_flow" in log]
    assert len(waited) == 1
    line = next(line for line in logs[waited[0]].splitlines() if "is in use by" in line)
    assert str(story["home"]) in line and "waiting for it to finish" in line
    assert story["versions_before"] == ["1", "2"]
    assert story["batches_before"] == 2


def test_the_user_was_everywhere_before(story) -> None:
    holding = {p.relative_to(story["home"]).parts[0] for p, n in story["before"].items() if n}
    assert {"warehouse.duckdb", "runs", "recommendations", "mlartifacts"} <= holding
    assert not any(row["fallback"] for row in story["served_before"])


def test_forget_reports_what_it_removed_and_the_new_champion(story) -> None:
    result = story["forget"]
    assert result.exit_code == 0, result.output
    counts = {line.split()[0]: int(line.split()[1]) for line in result.output.splitlines()
              if line.startswith("  ")}
    for place in ("raw_interactions", "clean_interactions", "recommendations",
                  "recommendation_files", "run_folders", "result_records", "model_versions"):
        assert counts[place] > 0, (place, counts)
    assert counts["model_users"] == 1 and counts["model_versions"] == 2  # both old versions
    assert "champion is now version 3" in result.output
    assert "erasure " in result.output and "2 users" in result.output


def test_no_byte_of_the_user_is_left_in_the_state_folder(story) -> None:
    home = story["home"]
    assert [p for p in files(home) if NEEDLE in p.read_bytes()] == []
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = "
            "'user_id'").fetchall()]
        for table in tables:
            assert con.execute(f"SELECT count(*) FROM {table} WHERE user_id = ?",
                               [USER]).fetchone() == (0,), table
    parquets = list(home.rglob("*.parquet"))
    assert any("recommendations" in p.parts for p in parquets)
    for path in parquets:  # decoded too: compressed pages would hide the bytes
        frame = pl.read_parquet(path)
        assert "user_id" not in frame.columns or USER not in frame["user_id"].to_list()
    for path in (home / "prefect" / "storage").iterdir():  # results are base64 pickles
        raw = path.read_bytes()
        text = json.loads(raw).get("result", "") if raw.startswith(b"{") else raw
        assert NEEDLE not in base64.b64decode(text)
    assert not list((home / "requests").iterdir())  # the request file is gone


def test_mlflow_params_tags_and_the_champions_artifacts_hold_no_trace(story) -> None:
    mlc, settings = story["mlflow"], story["settings"]
    runs = mlc.search_runs([mlc.get_experiment_by_name(registry.EXPERIMENT).experiment_id])
    for run in runs:
        assert USER not in json.dumps(run.data.params) + json.dumps(run.data.tags)
    versions = {str(v.version): v for v in mlc.search_model_versions(
        f"name='{settings.model_name}'")}
    assert USER not in json.dumps({n: v.tags for n, v in versions.items()})
    champion = mlc.get_model_version_by_alias(settings.model_name, registry.CHAMPION)
    assert str(champion.version) == "3" and champion.tags[registry.ERASURE_TAG]
    assert champion.tags["erasure.replaces"] == "1"
    for old in ("1", "2"):
        assert versions[old].tags[registry.PURGED_TAG] == champion.tags[registry.ERASURE_TAG]
        assert versions[old].aliases == []
    location = Path(registry._model_location(mlc, champion).removeprefix("file://"))
    assert (location / "MLmodel").is_file()
    assert not [p for p in location.rglob("*") if p.is_file() and NEEDLE in p.read_bytes()]
    model = registry.load_version(settings, "3")
    assert model.knows([USER]) == [] and len(model.users) > 0


def test_the_served_model_answers_the_user_with_the_fallback(story) -> None:
    assert story["served_after"] and all(row["fallback"] for row in story["served_after"])
    out = story["recommend"]
    assert out.exit_code == 0 and out.output.count("(popular fallback)") == 3


def test_a_second_forget_removes_nothing_and_the_audit_names_no_one(story) -> None:
    again = story["forget_again"]
    assert again.exit_code == 0, again.output
    counts = [int(line.split()[1]) for line in again.output.splitlines()
              if line.startswith("  ")]
    assert counts and set(counts) == {0}
    assert "champion is now" not in again.output
    audit = story["audit"]
    assert audit.height == 2 and audit["finished_at"].null_count() == 0
    assert audit["reason"].to_list() == ["ticket 7", "ticket 7"]
    assert json.loads(audit["removed"][0])["model_users"] == 1
    assert audit["model_version"].to_list() == ["3", None]
    assert USER not in audit.write_csv()


def test_the_orchestrator_never_saw_the_user_id(story) -> None:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[
            "forget"])))
    assert len(runs) >= 2
    assert USER not in json.dumps([run.parameters for run in runs])


def test_the_reason_may_not_name_a_user(story, monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_HOME", str(story["home"]))
    out = CliRunner().invoke(app, ["forget", "u3", "--reason", "asked by u3"])
    assert out.exit_code == 2
    assert out.output.strip().splitlines()[-1].startswith("error: the reason must not")
    assert erasure.audit(Settings(home=story["home"])).height == 2  # no request was opened
    assert not list((story["home"] / "requests").iterdir())
