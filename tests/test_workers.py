"""Worker processes: a call runs in another process, returns or raises what it would here, its
logs reach the caller, and a training there equals one here."""

from __future__ import annotations

import contextvars
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl
import torch

from recsys_core import pipeline, workers
from recsys_core.runstore import RunStore
from recsys_core.scoring import TrainOptions


def pid_and_log(value: int) -> tuple[int, int]:
    logging.getLogger("recsys_core.test").info("worker got %d", value)
    logging.getLogger("recsys_core.test").debug("not replayed: below INFO")
    return os.getpid(), value * 2


def fail(message: str) -> None:
    raise ValueError(message)


def test_without_a_pool_a_call_runs_here() -> None:
    assert workers.call(pid_and_log, 3) == (os.getpid(), 6)


def test_in_a_pool_a_call_runs_in_a_worker_and_its_log_is_replayed(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="recsys_core")
    with workers.pool(2):
        pid, doubled = workers.call(pid_and_log, 21)
        with pytest.raises(ValueError, match="bad row 7"):
            workers.call(fail, "bad row 7")
    assert pid != os.getpid() and doubled == 42
    records = [r for r in caplog.records if r.name == "recsys_core.test"]
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.INFO, "worker got 21")]
    assert workers.call(pid_and_log, 1)[0] == os.getpid()  # the pool is closed with its block


CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")


def test_side_by_side_runs_jobs_in_the_callers_context_and_stops_at_a_failure() -> None:
    seen: list[str] = []
    CURRENT.set("flow run")
    workers.side_by_side([lambda: seen.append(CURRENT.get())] * 3, lanes=2)
    assert seen == ["flow run"] * 3
    seen.clear()
    with pytest.raises(ValueError, match="bad"):
        workers.side_by_side([lambda: fail("bad"), lambda: seen.append("late")], lanes=1)
    assert seen == []  # not started once the first failed


def test_a_stage_beside_the_workers_runs_on_one_thread_and_the_settings_come_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside busy workers, threads that spin while they wait slow a stage down many times."""
    monkeypatch.setattr(workers, "_pool", object())  # as in the flow: a pool is open
    before = (torch.get_num_threads(), blas_threads())
    torch.set_num_threads(2)
    seen: list[tuple[int, int]] = []
    try:
        workers.side_by_side([lambda: None], 1,
                             beside=lambda: seen.append((torch.get_num_threads(), blas_threads())))
        assert seen == [(1, 1)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before[0])
    assert blas_threads() == before[1]


def blas_threads() -> int:
    return max(info["num_threads"] for info in threadpoolctl.threadpool_info()
               if info["user_api"] == "blas")


def test_a_training_in_a_worker_equals_one_here(small_run) -> None:
    """Both carves at once in two workers, as the training flow does, against each here."""
    store, embeddings = small_run
    params = {"dim": 16, "blocks": 1, "max_len": 10, "text_hidden": 16, "epochs": 3}
    options = TrainOptions(seed=3)
    users = store.vocabularies()[0].ids

    def scores(part: str) -> np.ndarray:
        path = pipeline.train_source(store, "user_encoder", params, part, options, embeddings)
        return RunStore.load_scorer(path).score(users).values

    here = {part: scores(part) for part in ("fit", "fit2")}
    with workers.pool(2), ThreadPoolExecutor(2) as lanes:
        paths = list(lanes.map(lambda part: workers.call(
            pipeline.train_source, store, "user_encoder", params, part, options, embeddings),
            ("fit", "fit2")))
    for part, path in zip(("fit", "fit2"), paths, strict=True):
        np.testing.assert_array_equal(RunStore.load_scorer(path).score(users).values,
                                      here[part])
    assert np.isfinite(here["fit"]).mean() > 0.5  # real scores, not NaN for unknown users
    assert not np.array_equal(here["fit"], here["fit2"], equal_nan=True)  # the carves differ


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_end_when_the_process_that_opened_the_pool_is_killed(tmp_path: Path) -> None:
    script = ("import os\nfrom recsys_core import workers\nwith workers.pool(1):\n"
              "    print(workers.call(os.getpid), flush=True)\n    os.kill(os.getpid(), 9)\n")
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:  # a file, not a pipe: a surviving worker would hold a pipe
        subprocess.run([sys.executable, "-c", script], stdout=stdout, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    worker = int(out.read_text().split()[0])
    deadline = time.monotonic() + 15
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(worker)
