"""Erasure tasks: open the audit, erase the data, make the model forget, close the audit.

None of them caches (an erasure is never skipped) and none logs or returns a user id.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.logging import get_run_logger

from recsys_core.config import get_settings
from recsys_core.lifecycle import erasure
from recsys_core.lifecycle.erasure import DataErasure, ModelErasure
from tasks.common import IO_RETRIES, Result

REDACTED = "<erased>"


class Erasure(Result):
    """An erasure request, done.

    Args:
        audit_id: its row in the ``erasures`` audit table.
        users: how many users it named.
        removed: place -> rows (files, folders, vectors, model versions) removed.
        champion: the version that replaced the champion, when one did.
    """

    audit_id: str
    users: int
    removed: dict[str, int]
    champion: str | None


@task(cache_policy=NO_CACHE, persist_result=False)
def requested_users(user_ids: list[str] | None, request: str | None) -> list[str]:
    """The ids to erase: given, or read from a request file (never persisted as a result)."""
    if request is not None and user_ids is None:
        return erasure.read_request(request)
    if user_ids is not None and request is None:
        return erasure.user_list(user_ids)
    raise ValueError("give either user_ids or a request file")


@task(cache_policy=NO_CACHE)
def begin_erasure(user_ids: list[str], reason: str) -> str:
    """Open the audit row of the request (counts only); returns the audit id."""
    audit_id = erasure.start(get_settings(), user_ids, reason)
    get_run_logger().info("erasure %s: %d users", audit_id, len(user_ids))
    return audit_id


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def erase_data(user_ids: list[str]) -> DataErasure:
    """Remove the users' rows from the warehouse, outputs, caches, run folders and documents."""
    result = erasure.erase_data(get_settings(), user_ids)
    get_run_logger().info("removed from the data: %s", result.removed)
    return result


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def erase_model(user_ids: list[str], audit_id: str, snapshots: dict[str, str]) -> ModelErasure:
    """Make the champion forget the users (a new version) and purge the versions knowing them."""
    result = erasure.erase_model(get_settings(), user_ids, audit_id, snapshots)
    get_run_logger().info("registry: champion %s -> %s, %d users dropped, purged %s%s",
                          result.replaced, result.version, result.users, result.purged,
                          "; retraining (a source cannot drop users)" if result.retrain else "")
    return result


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def replace_champion(version: str, user_ids: list[str], audit_id: str) -> list[str]:
    """Make a retrained version champion for the erasure; purge the versions knowing the users."""
    return erasure.replace_champion(get_settings(), version, user_ids, audit_id)


@task(cache_policy=NO_CACHE)
def finish_erasure(audit_id: str, users: int, removed: dict[str, int],
                   champion: str | None, request: str | None) -> Erasure:
    """Close the audit row (finish time, what went per place, the new champion) and request."""
    erasure.finish(get_settings(), audit_id, removed, champion)
    if request is not None:
        erasure.close_request(request)
    get_run_logger().info("erasure %s done: %s", audit_id, removed)
    return Erasure(audit_id=audit_id, users=users, removed=removed, champion=champion)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def redact_requests(flow_name: str = "forget", page: int = 200) -> int:
    """Replace the user ids given as parameters of the flow's runs (the API keeps them).

    Earlier runs that crashed before this step are redacted too. Returns the runs redacted.
    Ids handed over in a request file never reach the API.
    """
    redacted = 0
    with get_client(sync_client=True) as client:
        offset = 0
        while runs := client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                limit=page, offset=offset):
            for run in runs:
                ids = run.parameters.get("user_ids")
                if isinstance(ids, list) and any(i != REDACTED for i in ids):
                    client.update_flow_run(run.id, parameters={
                        **run.parameters, "user_ids": [REDACTED] * len(ids)})
                    redacted += 1
            offset += page
    get_run_logger().info("user ids redacted from the parameters of %d %s runs", redacted,
                          flow_name)
    return redacted
