"""The forget flow: erase users everywhere on request, with an audit row and no user id kept.

Data first (warehouse, batch outputs, embedding cache, run folders, result records,
documents), then the registry: the champion is copied without the users and the copy takes
its place, or, when a source cannot drop users, the champion is retrained on the erased
warehouse; every older version knowing them is purged. Holding the lock of ``RECSYS_HOME``,
it never runs beside a training on the same state folder.
"""

from __future__ import annotations

from prefect import flow

from flows.exclusive import exclusive
from flows.train import train_flow
from tasks.forget import (
    Erasure,
    begin_erasure,
    erase_data,
    erase_model,
    finish_erasure,
    redact_requests,
    replace_champion,
    requested_users,
)


@flow(name="forget")
@exclusive
def forget_flow(user_ids: list[str] | None = None, request: str | None = None,
                reason: str = "") -> Erasure:
    """Erase users (given, or one per line of a request file) everywhere; what went where.

    ``recsys forget`` hands over a request file, so the ids never become run parameters.
    """
    user_ids = requested_users(user_ids, request)
    audit_id = begin_erasure(user_ids, reason)
    data = erase_data(user_ids)
    model = erase_model(user_ids, audit_id, data.snapshots)
    champion, purged = model.version, model.purged
    if model.retrain is not None:
        spec = model.retrain
        report = train_flow(data=spec.data, protocol=spec.protocol, k=spec.k,
                            encoder=spec.encoder, trials=spec.trials, seed=spec.seed)
        retrained = None if report.registered is None else report.registered.version
        assert retrained is not None  # train_flow registers by default
        champion, purged = retrained, replace_champion(retrained, user_ids, audit_id)
    done = finish_erasure(audit_id, len(user_ids), {
        **data.removed, "model_users": model.users, "model_versions": len(purged)}, champion,
        request)
    redact_requests()
    return done
