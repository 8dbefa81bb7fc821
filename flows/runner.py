"""Where sharded stages run: threads in the flow's process, or a Dask cluster (prefect-dask)."""

from __future__ import annotations

from typing import Any, ParamSpec, TypeVar

from prefect import Flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from recsys_core.config import Settings, get_settings

P = ParamSpec("P")
R = TypeVar("R")


def task_runner(settings: Settings, local_threads: int | None = None) -> TaskRunner[Any]:
    """The task runner ``settings.task_runner`` names.

    ``local``: a thread pool of ``local_threads`` (Prefect's default size when None).
    ``dask``: prefect-dask's ``DaskTaskRunner`` on the cluster at ``settings.dask_address``,
    or on a temporary local cluster of ``settings.dask_workers`` worker processes.
    """
    if settings.task_runner == "local":
        return ThreadPoolTaskRunner(max_workers=local_threads)
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    cluster: dict[str, Any] = {"processes": True}
    if settings.dask_workers:
        cluster.update(n_workers=settings.dask_workers, threads_per_worker=1)
    return DaskTaskRunner(cluster_kwargs=cluster)


def sharded(stage: Flow[P, R], local_threads: int | None = None) -> Flow[P, R]:
    """``stage`` (a subflow that maps shard tasks) on the task runner the settings name now."""
    return stage.with_options(task_runner=task_runner(get_settings(), local_threads))
