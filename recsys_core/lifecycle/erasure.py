"""Erasure on request (GDPR art. 17): every trace of some users, wherever the product keeps one.

The places, and what ``erase_data`` and ``erase_model`` do there:

- the warehouse: the users' raw, clean and quarantined rows of every batch and their
  attributes (``Warehouse.forget``: changed snapshots get the id of their new content, later
  loads drop the users' rows), then the file is rewritten so no deleted byte stays in it;
- batch recommendations: their rows in the ``recommendations`` table and in every Parquet
  file under ``RECSYS_HOME/recommendations``;
- served state: their rows in the exported fresh events (``RECSYS_HOME/events``, files renamed
  after the snapshots' new ids);
- the embedding cache: behaviour texts are content-keyed, not user-keyed, so every vector
  that is not the document of an item of a stored snapshot goes (others' behaviour texts are
  embedded again when next used);
- run folders holding their rows (deleted whole: a run is rebuilt from the warehouse), the
  Prefect result records that name them or those folders, and rendered documents (Data Docs,
  reports) naming them;
- the registry: the champion is copied without them (``HybridRecommender.without_users``),
  with its precomputed lists computed again, registered as a new version tagged
  ``erasure=<audit id>`` and made champion in its place; every other version that knows them
  is purged (tagged, aliases dropped, its artifacts and its local serving copy under
  ``RECSYS_HOME/serving`` deleted). When a source cannot drop users, ``erase_model`` says so
  and the caller retrains on the erased warehouse (``replace_champion`` then promotes that
  version).

The ``erasures`` table is the audit: when, how many users, rows removed per place, the reason,
the new version; never a user id. Every step repeats safely: a rerun after a crash finishes
the job, and asking again for the same users removes nothing (every count 0).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from pydantic import BaseModel, ConfigDict

from recsys_core.config import Settings
from recsys_core.data import schema as S
from recsys_core.embed.cache import EmbeddingCache
from recsys_core.embed.documents import document_hash
from recsys_core.lifecycle import batch, registry
from recsys_core.model import events
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.runstore import RunStore
from recsys_core.warehouse import tables as T
from recsys_core.warehouse.features import item_documents
from recsys_core.warehouse.store import Warehouse

log = logging.getLogger(__name__)

_DROPPED_TAGS = ("promotion.", "rollback.", "erasure", "previous_champion",
                 registry.EVAL_RUN_TAG)
"""Tags of the old champion that do not carry over to its erased copy."""


class DataErasure(BaseModel):
    """What ``erase_data`` removed.

    Args:
        removed: place -> rows (or files, folders, vectors) removed.
        snapshots: old -> new id of each snapshot whose content changed.
    """

    model_config = ConfigDict(frozen=True)

    removed: dict[str, int]
    snapshots: dict[str, str]


class Retrain(BaseModel):
    """How the champion was trained, to train it again on the erased warehouse.

    Args:
        data: the dataset reference it was trained from (``recsys train --data``).
        protocol: evaluation protocol.
        k: metric cut-off.
        seed: seed.
        trials: fusion tuning trials.
        encoder: text encoder name or path.
    """

    model_config = ConfigDict(frozen=True)

    data: str
    protocol: str
    k: int
    seed: int
    trials: int
    encoder: str | None


class ModelErasure(BaseModel):
    """What ``erase_model`` did in the registry.

    Args:
        version: the champion now, when this erasure registered it (``None``: unchanged).
        replaced: the champion it replaced (or, with ``retrain``, is to replace).
        users: users dropped from the champion.
        purged: versions purged (artifacts deleted).
        retrain: set when the champion cannot drop users: train this again, then call
            ``replace_champion`` with the new version.
    """

    model_config = ConfigDict(frozen=True)

    version: str | None = None
    replaced: str | None = None
    users: int = 0
    purged: list[str] = []
    retrain: Retrain | None = None


def user_list(user_ids: Iterable[object]) -> list[str]:
    """The distinct ids of a request, in order.

    Args:
        user_ids: the requested ids.

    Raises:
        ValueError: no id, or an empty one.
    """
    ids = list(dict.fromkeys(str(u) for u in user_ids))
    if not ids:
        raise ValueError("give at least one user id to forget")
    if any(not u.strip() for u in ids):
        raise ValueError("a user id to forget is empty")
    return ids


def write_request(settings: Settings, user_ids: Iterable[object], reason: str = "") -> Path:
    """Store a request's user ids in a file under ``RECSYS_HOME/requests`` (mode 0600).

    Handing a flow this file instead of the ids keeps them out of the orchestrator's records
    (flow-run parameters); ``close_request`` deletes it once the erasure is done, so a file
    left there is a request still to finish.

    Args:
        settings: project settings (state folder).
        user_ids: the users.
        reason: the request's reason, checked as ``start`` checks it (before any file).

    Raises:
        ValueError: no user, or the reason contains one of the user ids.
    """
    ids = _checked(user_ids, reason)
    folder = settings.home / "requests"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"forget-{uuid.uuid4().hex}.txt"
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(ids) + "\n")
    os.replace(tmp, path)
    return path


def read_request(path: str | Path) -> list[str]:
    """The user ids of a request file (one per line).

    Args:
        path: from ``write_request`` (or any text file, one id per line).
    """
    return user_list(line for line in Path(path).read_text().splitlines() if line.strip())


def close_request(path: str | Path) -> None:
    """Delete a request file once its erasure is done.

    Args:
        path: the request file.
    """
    Path(path).unlink(missing_ok=True)


def start(settings: Settings, user_ids: Sequence[str], reason: str = "") -> str:
    """Open the audit row of an erasure request; returns its audit id.

    Args:
        settings: project settings (warehouse).
        user_ids: the users (only their number is recorded).
        reason: why (e.g. a ticket number); it must not name a user.

    Raises:
        ValueError: no user, or the reason contains one of the user ids.
    """
    ids = _checked(user_ids, reason)
    audit_id = uuid.uuid4().hex
    Warehouse(settings.warehouse_path)  # creates the audit table in an older file
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(*T.insert_row(T.ERASURES, {
            "audit_id": audit_id, "requested_at": datetime.now(UTC), "n_users": len(ids),
            "reason": reason}))
    log.info("erasure %s of %d users started", audit_id, len(ids))
    return audit_id


def finish(settings: Settings, audit_id: str, removed: dict[str, int],
           version: str | None) -> None:
    """Close the audit row: finish time, what was removed per place, the new champion.

    Args:
        settings: project settings (warehouse).
        audit_id: from ``start``.
        removed: place -> count.
        version: the version that replaced the champion, if any.
    """
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(f"UPDATE {T.ERASURES} SET finished_at = ?, removed = ?, model_version = ? "
                    "WHERE audit_id = ?",
                    [datetime.now(UTC), json.dumps(removed, sort_keys=True), version,
                     audit_id])


def audit(settings: Settings) -> pl.DataFrame:
    """Every erasure request, oldest first (``removed`` as JSON).

    Args:
        settings: project settings (warehouse).
    """
    return Warehouse(settings.warehouse_path).query(
        f"SELECT * FROM {T.ERASURES} ORDER BY requested_at")


def erase_data(settings: Settings, user_ids: Sequence[str]) -> DataErasure:
    """Remove the users' rows from the warehouse, outputs, caches, run folders and documents.

    Args:
        settings: project settings (every state path).
        user_ids: the users.
    """
    ids = user_list(user_ids)
    warehouse = Warehouse(settings.warehouse_path)
    removed, renamed = warehouse.forget(ids)
    removed["recommendations"] = _erase_table(settings.warehouse_path, ids)
    removed["recommendation_files"] = _erase_files(batch.recommendations_dir(settings), ids)
    removed["event_files"] = _erase_files(settings.events_dir, ids)
    _rename_events(settings.events_dir, renamed)
    hashes = [document_hash(doc) for doc in item_documents(warehouse)]
    removed["embedding_cache"] = EmbeddingCache(settings.warehouse_path).retain(hashes)
    runs = [run for run in RunStore.under(settings.runs_dir) if run.holds_users(ids)]
    needles = [u.encode() for u in ids] + [str(run.folder).encode() for run in runs]
    removed["result_records"] = _erase_mentions(settings.results_dir, needles, _payloads)
    for run in runs:
        run.delete()
    removed["run_folders"] = len(runs)
    removed["documents"] = sum(
        _erase_mentions(folder, [u.encode() for u in ids], lambda raw: [raw])
        for folder in (settings.data_docs_dir, settings.reports_dir))
    warehouse.rewrite()
    log.info("erased %d users from the data: %s", len(ids), removed)
    return DataErasure(removed=removed, snapshots=renamed)


def erase_model(settings: Settings, user_ids: Sequence[str], audit_id: str,
                snapshots: dict[str, str] | None = None) -> ModelErasure:
    """Make the champion forget the users and purge every other version that knows them.

    The champion is copied without them and the copy registered and promoted in its place
    (``replace_champion``). When one of its sources cannot drop users, nothing is changed and
    the answer carries ``retrain``.

    Args:
        settings: project settings (model name, tracking store).
        user_ids: the users.
        audit_id: the erasure's audit id (tagged on the new version and the purged ones).
        snapshots: old -> new snapshot ids from ``erase_data`` (the copy's snapshot tag).

    Raises:
        LookupError: the champion must be retrained but its run does not say from what data.
    """
    ids = user_list(user_ids)
    mlc = registry.client(settings)
    champion = registry.alias_version(mlc, settings.model_name, registry.CHAMPION)
    if champion is None or registry.PURGED_TAG in champion.tags:
        return ModelErasure(purged=purge_holders(settings, ids, audit_id, keep=None))
    model = registry.load_version(settings, str(champion.version))
    known = model.knows(ids)
    if not known:
        return ModelErasure(purged=purge_holders(settings, ids, audit_id,
                                                 keep=str(champion.version)))
    copy = model.without_users(known)
    if copy is None:
        log.warning("champion %s cannot drop users from one of its sources: retrain it",
                    champion.version)
        return ModelErasure(replaced=str(champion.version), users=len(known),
                            retrain=_retrain_spec(mlc, champion.run_id, champion.version))
    version = _register_copy(settings, champion, copy, audit_id, snapshots or {})
    purged = replace_champion(settings, version, ids, audit_id)
    return ModelErasure(version=version, replaced=str(champion.version), users=len(known),
                        purged=purged)


def replace_champion(settings: Settings, version: str, user_ids: Sequence[str],
                     audit_id: str) -> list[str]:
    """Make ``version`` champion for erasure ``audit_id``; purge the versions knowing the users.

    Args:
        settings: project settings (model name, tracking store).
        version: a version that does not know the users.
        user_ids: the users.
        audit_id: the erasure's audit id.

    Returns:
        The purged versions.
    """
    mlc = registry.client(settings)
    name = settings.model_name
    for key, value in {registry.ERASURE_TAG: audit_id,
                       "promotion.decision": f"erasure {audit_id}"}.items():
        mlc.set_model_version_tag(name, version, key, value)
    mlc.set_registered_model_alias(name, registry.CHAMPION, version)
    log.info("version %s is champion after erasure %s", version, audit_id)
    return purge_holders(settings, user_ids, audit_id, keep=version)


def purge_holders(settings: Settings, user_ids: Sequence[str], audit_id: str,
                  keep: str | None) -> list[str]:
    """Purge every version (but ``keep``) whose model knows any of the users.

    A version purged before whose artifacts are still there (an interrupted purge) is purged
    again; a purge already complete is left alone.

    Args:
        settings: project settings (model name, tracking store).
        user_ids: the users.
        audit_id: the erasure's audit id.
        keep: a version known not to hold them.

    Returns:
        The versions purged now.
    """
    purged = []
    for found in registry.versions(settings):
        version = str(found.version)
        if version == keep:
            continue
        if registry.PURGED_TAG in found.tags:
            registry.purge(settings, version, found.tags[registry.PURGED_TAG])
            continue
        if registry.load_version(settings, version).knows(user_ids):
            registry.purge(settings, version, audit_id)
            purged.append(version)
    return purged


def _checked(user_ids: Iterable[object], reason: str) -> list[str]:
    ids = user_list(user_ids)
    if any(u in reason for u in ids):
        raise ValueError("the reason must not contain a user id: the audit keeps no personal "
                         "data")
    return ids


def _register_copy(settings: Settings, champion: registry.ModelVersion,
                   model: HybridRecommender, audit_id: str, snapshots: dict[str, str]) -> str:
    """Register ``model`` (the champion without some users) with the champion's run params."""
    mlc = registry.client(settings)
    tags = {key: value for key, value in champion.tags.items()
            if not key.startswith(_DROPPED_TAGS)}
    if tags.get("snapshot_id") in snapshots:
        tags["snapshot_id"] = snapshots[tags["snapshot_id"]]
    tags |= {registry.ERASURE_TAG: audit_id, "erasure.replaces": str(champion.version)}
    params = mlc.get_run(champion.run_id).data.params if champion.run_id else {}
    report = {"dataset": tags.get("dataset", "unknown"),
              "protocol": tags.get("protocol", "unknown"), "k": int(tags.get("k", 10))}
    with tempfile.TemporaryDirectory(prefix="recsys-erasure-") as tmp:
        folder = model.save(Path(tmp) / "model", {
            "snapshot_id": tags.get("snapshot_id"), "dataset": report["dataset"],
            "protocol": report["protocol"], "erasure": audit_id,
            "replaces": str(champion.version)})
        version, _, _ = batch.register_with_top_k(model, folder, report, dict(params), tags,
                                                  settings)
    return version.version


def _retrain_spec(mlc: registry.Client, run_id: str | None, version: object) -> Retrain:
    params = mlc.get_run(run_id).data.params if run_id else {}
    if "data" not in params:
        raise LookupError(f"champion version {version} cannot drop users and its run does not "
                          "say what data it was trained on: retrain it with `recsys train`")
    return Retrain(data=params["data"], protocol=params.get("training.protocol", "stratified"),
                   k=int(params.get("training.k", 10)), seed=int(params.get("training.seed", 42)),
                   trials=int(params.get("training.trials", 30)),
                   encoder=params.get("encoder"))


def _erase_table(path: Path, ids: list[str]) -> int:
    """Delete the users' rows from the warehouse table of batch recommendations."""
    with duckdb.connect(str(path)) as con:
        if not con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?",
                           [batch.TABLE]).fetchall():
            return 0
        row = con.execute(f"DELETE FROM {batch.TABLE} WHERE list_contains(?, {S.USER_ID})",
                          [ids]).fetchone()
    return 0 if row is None else int(row[0])


def _erase_files(folder: Path, ids: list[str]) -> int:
    """Rewrite every Parquet file under ``folder`` without the users' rows; count the rows.

    Half-written temporary files (a killed batch run) are deleted.
    """
    if not folder.is_dir():
        return 0
    for stray in folder.rglob(".*.tmp"):
        stray.unlink()
    removed = 0
    for path in sorted(folder.rglob("*.parquet")):
        frame = pl.read_parquet(path)
        if S.USER_ID not in frame.columns:
            continue
        kept = frame.filter(~pl.col(S.USER_ID).is_in(ids))
        if kept.height == frame.height:
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        kept.write_parquet(tmp)
        os.replace(tmp, path)
        removed += frame.height - kept.height
    return removed


def _rename_events(folder: Path, renamed: dict[str, str]) -> None:
    """Name each events export after its snapshots' new ids.

    Served versions then still follow the exports descending from their training snapshot.
    """
    if not folder.is_dir() or not renamed:
        return
    for path in sorted(folder.glob(f"*{events.SUFFIX}")):
        parent, _, snapshot = path.name.removesuffix(events.SUFFIX).partition("-")
        target = events.events_file(folder, renamed.get(parent, parent),
                                    renamed.get(snapshot, snapshot))
        if target != path:
            os.replace(path, target)


def _payloads(raw: bytes) -> list[bytes]:
    """A Prefect result record's bytes and its decoded (base64) result."""
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    text = record.get("result") if isinstance(record, dict) else raw
    try:
        decoded = base64.b64decode(text) if isinstance(text, str | bytes) else b""
    except (binascii.Error, ValueError):
        decoded = b""
    return [raw, decoded]


def _erase_mentions(folder: Path, needles: list[bytes],
                    payloads: Callable[[bytes], list[bytes]]) -> int:
    """Delete every file under ``folder`` whose payloads contain any of ``needles``."""
    if not folder.is_dir() or not needles:
        return 0
    removed = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if any(needle in payload for payload in payloads(path.read_bytes())
               for needle in needles):
            path.unlink()
            removed += 1
    return removed
