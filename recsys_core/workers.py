"""Worker processes that run independent trainings side by side.

Each source trains on one torch thread (``deep.torch_utils.TRAIN_THREADS``), so trainings
run one after another leave the other cores idle, though the validation carves' sources are
independent of each other. Threads cannot share them out: dropout and the seeded blocks use
torch's process-wide random state, so two trainings in one process would not be
reproducible. ``pool(n)`` opens ``n`` spawned worker processes instead, and ``call`` (from
any thread) runs a function in one of them while a pool is open, in the caller otherwise. A
spawned process inherits no state from its caller, and every training seeds itself, so a
call gives the same result in a worker as in the caller.

What the call logged under ``recsys_core`` is replayed in the caller's thread once it
returns, so an orchestrator's log handlers (Prefect's attaches records to the task run that
is current in that thread) see it as if the call had run there.
"""

from __future__ import annotations

import contextvars
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import threadpoolctl
import torch

from recsys_core.embed.device import available_cores

T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None  # the open pool, for every thread of the process
LOGGER = "recsys_core"


@contextmanager
def pool(workers: int) -> Iterator[None]:
    """Run ``call`` in one of ``workers`` spawned processes within the block.

    The processes are stopped when the block ends. Pools do not nest.

    Args:
        workers: processes, started when first needed.
    """
    global _pool
    if _pool is not None:
        raise RuntimeError("a worker pool is already open")
    threads = max(1, available_cores() // workers)
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(os.getpid(), threads))
    _pool = executor
    try:
        yield
    finally:
        _pool = None
        executor.shutdown(wait=True, cancel_futures=True)


def _start_worker(parent: int, threads: int) -> None:
    """Worker start-up: share the cores, and end once the process that opened the pool is gone.

    The workers share the cores out: ``threads`` BLAS and OpenMP threads each (libraries
    loaded later read the environment). A BLAS sized for the whole machine in every worker
    oversubscribes the cores, and its threads spin against the other workers'.

    A worker blocks on its task queue, whose pipe its sibling holds open too, so a killed
    flow would otherwise leave its workers behind, each with torch loaded.
    """
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    threadpoolctl.threadpool_limits(limits=threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def call(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker process of the open ``pool``, else here.

    ``fn`` and ``args`` must pickle (``fn`` by reference: a module-level function). An
    exception raised by ``fn`` is raised here, with the worker's traceback as its cause.
    """
    if _pool is None:
        return fn(*args)
    result, records = _pool.submit(_logged, fn, args).result()
    for record in records:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
    return result


def side_by_side(jobs: Sequence[Callable[[], object]], lanes: int,
                 beside: Callable[[], object] | None = None) -> None:
    """Run ``jobs`` in ``lanes`` threads, in their order, and ``beside`` meanwhile.

    Each job runs in a copy of the caller's context, so an orchestrator's run context holds in
    it (Prefect's, for the tasks a job calls). ``beside()`` runs in the calling thread, on one
    thread (``_one_thread``), while the jobs run in the pool's workers: a stage that needs
    none of them takes up what they leave idle. While no ``pool`` is open the jobs run in
    this process, whose random state and thread settings they share, so ``beside`` runs
    first instead. The first failure is raised once the jobs already running end; the others
    are dropped.
    """
    failed = threading.Event()

    def guarded(job: Callable[[], object]) -> None:
        if failed.is_set():
            return
        try:
            job()
        except BaseException:
            failed.set()
            raise

    if beside is not None and _pool is None:
        beside()
        beside = None
    with ThreadPoolExecutor(max(1, min(lanes, len(jobs)))) as executor:
        running = [executor.submit(contextvars.copy_context().run, guarded, job)
                   for job in jobs]
        if beside is not None:
            try:
                with _one_thread():
                    beside()
            except BaseException:
                failed.set()  # the queued jobs are dropped; the running ones end first
                raise
        for job in running:
            job.result()


@contextmanager
def _one_thread() -> Iterator[None]:
    """BLAS, OpenMP and torch on one thread in this process within the block.

    Beside the workers' trainings every core is taken: threads that spin while they wait for
    each other then slow down many times over (``deep.torch_utils.TRAIN_THREADS``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Formatted here: the arguments and a traceback need not pickle.
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.append(record)


def _logged(fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[T, list[logging.LogRecord]]:
    """Run in a worker: ``fn(*args)`` and the records it logged at INFO or above."""
    handler = _Collect()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        return fn(*args), handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
