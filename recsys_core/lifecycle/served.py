"""Registered versions as servers and ``recsys recommend`` read them: local, opened lazily.

``open_served`` resolves an alias, keeps a local copy of the version's model folder under
``Settings.serving_dir`` (a version never changes, so it is copied from the artifact store
once) and opens it as a ``ServedModel``: precomputed lists mapped, fresh events followed, the
model unpickled only when a request needs it. For the local sqlite store the alias is read
from MLflow's registry tables directly (read-only, one query), so a warm answer from the
lists imports neither MLflow nor torch; any other store, or a table this MLflow version does
not have, goes through ``MlflowClient``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from recsys_core.config import Settings
from recsys_core.model.folder import MODEL_FILE
from recsys_core.model.serving import ServedModel

log = logging.getLogger(__name__)

_ALIAS_SQL = ("SELECT v.version, v.run_id FROM registered_model_aliases a JOIN model_versions v "
              "ON v.name = a.name AND v.version = a.version WHERE a.name = ? AND a.alias = ?")
_VERSION_SQL = "SELECT version, run_id FROM model_versions WHERE name = ? AND version = ?"
_DELETED = "Deleted_Internal"


def resolve(settings: Settings, alias: str) -> tuple[str, str] | None:
    """The version an alias (or a version number) names and its run, or None when none.

    Args:
        settings: project settings (model name, tracking store).
        alias: ``champion``, ``challenger`` or a version number.
    """
    prefix = "sqlite:///"
    if settings.tracking_uri.startswith(prefix):
        database = Path(settings.tracking_uri.removeprefix(prefix))
        if not database.is_file():
            return None  # nothing was ever registered here
        try:
            return _from_sqlite(database, settings.model_name, str(alias))
        except sqlite3.Error as error:  # another schema: ask MLflow
            log.info("reading the registry of %s directly failed (%s)", database, error)
    return _from_mlflow(settings, str(alias))


def copy_folder(settings: Settings, version: str, run_id: str) -> Path:
    """Where the local copy of a version's model folder lives (``local_folder`` makes it).

    Args:
        settings: project settings (state folder, model name).
        version: the version number.
        run_id: the run that logged it.
    """
    return settings.serving_dir / settings.model_name / f"v{version}-{run_id}"


def drop_copy(settings: Settings, version: str, run_id: str) -> bool:
    """Delete a version's local copy (a purged version must not be served from it).

    Returns:
        Whether there was one.
    """
    target = copy_folder(settings, version, run_id)
    if not target.exists():
        return False
    shutil.rmtree(target)
    return True


def local_folder(settings: Settings, version: str, run_id: str) -> Path:
    """The version's model folder, copied from the artifact store on first use.

    Args:
        settings: project settings (model name, tracking store, state folder).
        version: the version number.
        run_id: the run that logged it (part of the copy's name, so a store rebuilt with
            the same version numbers never serves an old copy).
    """
    target = copy_folder(settings, version, run_id)
    if (target / MODEL_FILE).is_file():
        return target
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    from recsys_core.lifecycle.registry import client, model_uri
    from recsys_core.model.pyfunc import ARTIFACT_KEY

    client(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        local = Path(download_artifacts(artifact_uri=model_uri(settings, version),
                                        dst_path=tmp))
        artifacts = Model.load(local).flavors["python_function"]["artifacts"]
        try:
            os.replace(local / artifacts[ARTIFACT_KEY]["path"], target)
        except OSError:
            if not (target / MODEL_FILE).is_file():  # not a concurrent copy that won
                raise
    log.info("version %s of %s copied to %s", version, settings.model_name, target)
    return target


def open_served(settings: Settings, alias: str) -> tuple[str, ServedModel] | None:
    """The version an alias names, opened for serving; None when the alias names none.

    Args:
        settings: project settings (model name, stores, events folder, poll interval).
        alias: ``champion``, ``challenger`` or a version number.
    """
    found = resolve(settings, alias)
    if found is None:
        return None
    version, run_id = found
    folder = local_folder(settings, version, run_id)
    return version, ServedModel.open(folder, settings.events_dir, settings.events_poll_s)


def _from_sqlite(database: Path, name: str, alias: str) -> tuple[str, str] | None:
    with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as con:
        if alias.isdigit():
            row = con.execute(_VERSION_SQL + " AND current_stage != ?",
                              [name, int(alias), _DELETED]).fetchone()
        else:
            row = con.execute(_ALIAS_SQL, [name, alias]).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def _from_mlflow(settings: Settings, alias: str) -> tuple[str, str] | None:
    from mlflow.exceptions import MlflowException

    from recsys_core.lifecycle.registry import alias_version, client

    mlc = client(settings)
    if not alias.isdigit():
        found = alias_version(mlc, settings.model_name, alias)
    else:
        try:
            found = mlc.get_model_version(settings.model_name, alias)
        except MlflowException:
            found = None
    return None if found is None else (str(found.version), str(found.run_id))
