"""``recsys train`` options reach the training flow parsed (no flow runs here)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import flows.train
from flows.app.cli import app
from recsys_core.data.errors import DataError


@pytest.fixture
def flow_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The keyword arguments of each train_flow call; the fake flow stops with a DataError."""
    calls: list[dict] = []

    def fake_flow(**kwargs: object) -> None:
        calls.append(kwargs)
        raise DataError("stopped before training")

    monkeypatch.setattr(flows.train, "train_flow", fake_flow)
    return calls


@pytest.mark.parametrize(("args", "expected"), [
    ([], [10]),
    (["--k", "20"], [20]),
    (["--k", "10", "--k", "20"], [10, 20]),
    (["--k", "10,20"], [10, 20]),
    (["--k", "20,10", "--k", "50", "--k", "10"], [20, 10, 50]),
])
def test_k_takes_several_cutoffs_first_one_first(flow_calls, args, expected) -> None:
    result = CliRunner().invoke(app, ["train", "--protocol", "given", *args, "--no-register"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(
        "error: stopped before training (log: ")
    assert flow_calls[0]["k"] == expected and flow_calls[0]["protocol"] == "given"


@pytest.mark.parametrize("bad", ["0", "ten", "10,-5"])
def test_a_bad_cutoff_is_a_one_line_error_before_any_flow(flow_calls, bad) -> None:
    result = CliRunner().invoke(app, ["train", "--k", bad, "--no-register"])
    assert result.exit_code == 2 and not flow_calls
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad cut-off")
