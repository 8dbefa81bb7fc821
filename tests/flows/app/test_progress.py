"""The progress board: stages from run events, and the names it shows of real tasks."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
import string

from prefect import Flow, Task
from rich.console import Console

import flows
import tasks
from flows.app.progress import DETAILS, GROUPS, LABELS, NAMES, UNITS, Board


def feed(board: Board) -> None:
    """A training-shaped run: API start, a task, grouped runs, a subflow of shards, a failure."""
    board.begin("start Prefect", "temporary local API")
    board.flow_started("root", None)
    board.task_started("t1", "root", "train", "ingest", {"data": "synthetic:100"})
    board.run_ended("t1", "Completed", failed=False)
    for run, name in (("s1", "als"), ("s2", "ease")):
        board.task_started(run, "root", "train", "train_source", {"name": name, "part": "fit"})
        board.run_ended(run, "Cached", failed=False)
    board.task_started("s3", "root", "train", "train_source", {"name": "als", "part": "train"})
    board.run_ended("s3", "Completed", failed=False)
    board.flow_started("sub", "root")
    board.task_started("p", "sub", "embed", "plan_embedding", {"run": "r"})
    board.run_ended("p", "Completed", failed=False)
    for run, texts in (("e1", ["a", "b", "c"]), ("e2", ["d"])):
        board.task_started(run, "sub", "embed", "embed_shard", {"shard": texts})
        board.run_ended(run, "Completed", failed=False)
    board.run_ended("sub", "Completed", failed=False)
    board.task_started("t2", "root", "train", "tune_fusion", {"trials": 7})
    board.run_ended("t2", "Failed", failed=True)
    board.run_ended("root", "Failed", failed=True)


def test_stages_group_count_and_close_once_in_order() -> None:
    closed = []
    board = Board(on_close=closed.append)
    feed(board)
    rows = [(s.label, s.describe(), s.failed) for s in board.stages]
    assert rows[:4] + rows[5:] == [
        ("start Prefect", "temporary local API", False),
        ("validate and load", "synthetic:100", False),
        ("train sources (fit)", "als, ease · cached", False),
        ("train sources (train)", "als", False),
        ("tune fusion", "7 trials", True),
    ]
    label, detail, failed = rows[4]
    assert (label, failed) == ("embed items", False)
    assert re.fullmatch(r"4 documents · [\d,.]+/s", detail) and board.stages[4].rate > 0
    assert closed == board.stages  # each stage once, when nothing could change it any more
    assert all(stage.ended is not None for stage in board.stages)


def test_board_renders_each_stage_in_aligned_columns() -> None:
    board = Board()
    feed(board)
    buffer = io.StringIO()
    Console(file=buffer, width=80).print(board)
    lines = buffer.getvalue().splitlines()
    assert [line[:24] for line in lines] == [
        "✓ start Prefect         ", "✓ validate and load     ", "✓ train sources (fit)   ",
        "✓ train sources (train) ", "✓ embed items           ", "✗ tune fusion           "]
    assert {len(line.rstrip()) for line in lines} == {80}  # the seconds end every line
    assert all(line.rstrip().endswith("s") for line in lines)


def test_groups_running_side_by_side_keep_one_stage_each() -> None:
    """The carves' sources train in two threads: their runs interleave, and one carve's stage
    may have nothing running for a moment when the other's begins."""
    closed = []
    board = Board(on_close=closed.append)
    board.flow_started("root", None)

    def source(run: str, name: str, part: str) -> None:
        board.task_started(run, "root", "train", "train_source", {"name": name, "part": part})

    source("a1", "als", "fit")
    board.run_ended("a1", "Completed", failed=False)  # fit: nothing running now
    source("b1", "als", "fit2")
    source("a2", "ease", "fit")
    board.run_ended("b1", "Completed", failed=False)
    source("b2", "ease", "fit2")
    board.run_ended("a2", "Completed", failed=False)
    board.run_ended("b2", "Completed", failed=False)
    assert closed == []  # a later run of either group may still come
    board.task_started("t", "root", "train", "tune_fusion", {"trials": 2})
    assert [(s.label, s.describe()) for s in closed] == [
        ("train sources (fit)", "als, ease"), ("train sources (fit2)", "als, ease")]
    assert [s.runs for s in closed] == [2, 2]


def test_a_stage_still_running_when_the_command_fails_is_failed() -> None:
    board = Board()
    board.begin("start Prefect")
    board.fail_running()
    assert board.stages[0].failed and board.stages[0].closed


def _members(package, kind):
    found = {}
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        found.update({obj.name: obj for obj in vars(module).values() if isinstance(obj, kind)})
    return found


def test_the_board_names_real_tasks_and_their_parameters() -> None:
    task_params = {name: set(inspect.signature(task.fn).parameters)
                   for name, task in _members(tasks, Task).items()}
    flow_names = set(_members(flows, Flow))
    assert set(LABELS) <= set(task_params) | flow_names
    for name, template in DETAILS.items():
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        assert fields <= task_params[name], name
    for mapping in (GROUPS, NAMES):
        for name, parameter in mapping.items():
            assert parameter in task_params[name], name
    for name in UNITS:
        assert "shard" in task_params[name], name
