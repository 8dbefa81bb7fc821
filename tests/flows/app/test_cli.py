"""The `recsys` CLI as a newcomer meets it: one-line errors before Prefect starts, a progress
board instead of a log wall, the logs in a file, and `recsys status`."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.logging.handlers import PrefectConsoleHandler
from typer.testing import CliRunner

from flows.app import console
from flows.app.cli import app
from tests.data.test_layouts import lastfm_files
from tests.tiny_bert import build_tiny_model

BIN = Path(sys.executable).parent


def recsys(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`recsys ARGS` in a process of its own, with only RECSYS_HOME set (as a new user has)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "MLFLOW_", "RECSYS_"))}
    return subprocess.run([str(BIN / "recsys"), *args], env=env | {"RECSYS_HOME": str(home)},
                          capture_output=True, text=True, timeout=300)


def dataset(folder: Path, interactions_header: str = "user_id,item_id,timestamp") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "interactions.csv").write_text(interactions_header + "\nu1,i1,1\nu2,i1,2\n")
    (folder / "items.csv").write_text("item_id,title\ni1,One\n")
    return folder


@pytest.mark.parametrize(("case", "args", "expected"), [
    ("bad directory", ["--data", "{tmp}/nowhere"], r"nowhere: not a directory$"),
    ("missing column", ["--data", "{data}"],
     r"interactions\.csv: missing required column 'user_id' \(found: user, item_id, "
     r"timestamp\)$"),
    ("missing encoder", ["--encoder", "{tmp}/models/bert"], r"bert': no such folder$"),
    ("bad protocol", ["--protocol", "sideways"], r"--protocol: unknown protocol 'sideways'"),
    ("protocol needs times", ["--data", "{lastfm}", "--protocol", "leave_last"],
     r"--protocol leave_last: .*lastfm has no interaction times to order by"),
    ("bad k", ["--k", "10,0"], r"bad cut-off '0': use integers >= 1"),
    ("bad option value", ["--trials", "many"],
     r"Invalid value for '--trials'.* \(see `recsys train --help`\)$"),
])
def test_bad_input_is_one_line_on_stderr_before_prefect_starts(
        tmp_path: Path, case: str, args: list[str], expected: str) -> None:
    data = dataset(tmp_path / "data", "user,item_id,timestamp")
    lastfm = lastfm_files(tmp_path / "lastfm", header=True)  # no times at all
    home = tmp_path / "home"
    done = recsys(home, "train", *[a.format(tmp=tmp_path, data=data, lastfm=lastfm)
                                   for a in args])
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert not (home / "prefect" / "prefect.db").exists()  # no Prefect server ever started
    assert not (home / "logs").exists()  # nor a flow: no command session began


def test_status_of_a_fresh_home_creates_nothing_and_starts_no_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = recsys(home, "status")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    out = done.stdout
    assert f"RECSYS_HOME {home}" in out
    assert "Snapshots  none yet" in out and "Training runs  none registered yet" in out
    assert "Versions of recsys-hybrid  none yet" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{home}/mlflow.db" in out
    assert f"PREFECT_HOME={home}/prefect prefect server start" in out
    assert not (home / "mlflow.db").exists() and not (home / "warehouse.duckdb").exists()
    assert not (home / "prefect" / "prefect.db").exists()


def test_quiet_routing_takes_prefects_console_off_and_verbose_keeps_it(tmp_path: Path) -> None:
    root = logging.getLogger()
    prefect_console = PrefectConsoleHandler()  # what logging.yml gives the CLI's root logger
    root.addHandler(prefect_console)  # (under pytest, whose handlers come first, it gives none)
    try:
        console._route_logs(tmp_path / "quiet.log", quiet=True)
        assert prefect_console not in root.handlers and console._Routing.file in root.handlers
        console._route_logs(tmp_path / "verbose.log", quiet=False)
        assert prefect_console in root.handlers and console._Routing.file in root.handlers
        logging.getLogger("recsys_core.data").info("a flow's line")
        assert "a flow's line" in (tmp_path / "verbose.log").read_text()
        assert "a flow's line" not in (tmp_path / "quiet.log").read_text()
    finally:
        console._route_logs(tmp_path / "after.log", quiet=False)
        root.removeHandler(prefect_console)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A RECSYS_HOME of the test's own (its MLflow store too)."""
    home = tmp_path / "home"
    monkeypatch.setenv("RECSYS_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home}/mlflow.db")
    return home


def test_bad_rows_found_by_the_flow_end_as_one_line(prefect_harness, home: Path,
                                                    tmp_path: Path) -> None:
    data = tmp_path / "data"
    dataset(data)
    rows = "".join(f"u{i},i1,{'never' if i % 2 else i}\n" for i in range(40))
    (data / "interactions.csv").write_text("user_id,item_id,timestamp\n" + rows)
    result = CliRunner().invoke(app, ["ingest", "--data", str(data)])
    assert result.exit_code == 2
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(r"error: .*interactions.* \(log: .*/logs/ingest-[\d-]+\.log\)", last), last
    assert result.stderr.splitlines()[-2].startswith("✗ validate and load")
    assert "Traceback" not in result.output and "Finished in state" not in result.output
    log = Path(last.rsplit("(log: ", 1)[1].rstrip(")")).read_text()
    assert "Traceback (most recent call last)" in log and "Finished in state Failed" in log


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("cli-bert")))


def test_train_shows_the_board_the_table_and_where_things_are_then_status(
        prefect_harness, home: Path, tiny_encoder: str, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, [
        "train", "--data", "synthetic:1500", "--k", "5", "--trials", "2",
        "--encoder", tiny_encoder, "--report", str(report)])
    assert result.exit_code == 0, result.output
    board = result.stderr.splitlines()
    labels = [line[2:24].strip() for line in board]
    assert labels[:7] == ["connect to Prefect", "check encoder", "validate and load",
                          "features and split", "embed items", "size plan", "tune sources"]
    # sources trained on each validation carve; the fusion's tuning runs beside the refit,
    # so either may start first
    assert re.fullmatch(r"(train sources \(fit\d*\)\|)+"
                        r"(tune fusion\|train sources \(train\)|"
                        r"train sources \(train\)\|tune fusion)"
                        r"\|evaluate\|register in MLflow\|promotion gate\|publish artifacts",
                        "|".join(labels[7:])), labels
    assert all(line.startswith("✓ ") and re.search(r"\d+\.\ds$", line) for line in board)
    detail = dict(zip(labels, board, strict=True))
    assert re.search(r"\d+ documents · [\d,.]+/s", detail["embed items"])
    assert "user_encoder" in detail["train sources (fit)"]  # the costliest run first
    assert "2 trials" in detail["tune fusion"] and "users" in detail["evaluate"]

    out = result.stdout
    assert "| fused " in out and "registered: recsys-hybrid v1" in out
    assert f"report      {report}" in out and report.is_file()
    assert re.search(r"mlflow run  runs:/\w+  \(UI: mlflow ui --backend-store-uri sqlite:", out)
    assert "Finished in state" not in result.output and "INFO" not in result.output
    log = Path(re.search(r"^log\s+(\S+)$", out, re.MULTILINE).group(1)).read_text()
    assert "| INFO    | Task run 'ingest-" in log and "Finished in state Completed()" in log
    assert "| INFO    | recsys_core." in log  # the core's INFO lines too

    status = CliRunner().invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    text = status.stdout
    assert re.search(r"\n\s*\w{16}\s+synthetic\S*\s+1,\d{3}\s+\d+\s+20\d\d-", text)
    assert re.search(r"synthetic\S*\s+stratified\s+0\.\d{4} @5\s+1\s*\n", text)
    assert re.search(r"\n\s*1\s+challenger, champion\s+20\d\d-\S+ \S+\s+promoted 0\.\d{4} vs "
                     r"none\s*\n", text)
