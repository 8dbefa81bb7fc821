"""MLflow logging, registration and the promotion policy."""

from __future__ import annotations

import copy
import importlib.metadata
import logging
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from recsys_core.config import Settings
from recsys_core.evaluation.plots import report_plots
from recsys_core.lifecycle import served
from recsys_core.model.folder import read_meta
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.model.precomputed import TOP_K_DIR, TopK
from recsys_core.model.pyfunc import ARTIFACT_KEY, HybridPyfunc, signature

log = logging.getLogger(__name__)

EXPERIMENT = "recsys-hybrid"
CHAMPION = "champion"
CHALLENGER = "challenger"
REQUIRED_TAGS = ("snapshot_id", "validation", "git_commit", "dataset", "protocol", "encoder")
"""Tags every version carries ("unknown" when the caller could not say)."""
EVAL_RUN_TAG = "eval_run"
"""Version tag: the run folder whose train/test parts the version was evaluated on."""
ERASURE_TAG = "erasure"
"""Version tag: the audit id of the erasure that registered this version without some users."""
PURGED_TAG = "erasure.purged"
"""Version tag: the audit id of the erasure that deleted this version's artifacts (it held
users that were erased); the version stays listed for lineage but can no longer load."""
MODEL_REQUIREMENTS = ("recsys-hybrid", "cloudpickle", "numpy", "pandas", "scipy")
"""What the logged model needs to load, pinned at the installed versions. Left to itself MLflow
infers this by loading the model in a subprocess: 7.8 s of a 13 s registration on 2 cores. A
test checks that the list still covers what that inference finds."""
Client = MlflowClient
"""The MLflow client type, for modules that must not import mlflow themselves."""


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version and the run that logged it."""

    name: str
    version: str
    run_id: str


def client(settings: Settings) -> MlflowClient:
    """Point MLflow at the settings' store (sqlite under RECSYS_HOME unless overridden).

    Args:
        settings: project settings.
    """
    settings.ensure_dirs()
    mlflow.set_tracking_uri(settings.tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=settings.artifacts_dir.as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return MlflowClient(settings.tracking_uri)


def metric_key(name: str) -> str:
    """An MLflow-safe metric key (``fused/ndcg@10`` -> ``fused/ndcg_at_10``)."""
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", name.replace("@", "_at_"))


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Flatten nested dicts into ``a.b.c`` keys (MLflow params are flat)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    return {prefix: value}


def version_tags(model: HybridRecommender, report: dict, tags: dict[str, str],
                 eval_run: str | None = None) -> dict[str, str]:
    """The tags of a new version: the caller's, plus defaults from the report and model.

    Args:
        model: the recommender (its encoder reference).
        report: the evaluation report (dataset, protocol, k).
        tags: the caller's tags (snapshot id, validation, git commit...); they win.
        eval_run: the run folder holding the evaluation data, if any.
    """
    out = {"dataset": str(report.get("dataset", "unknown")),
           "protocol": str(report.get("protocol", "unknown")),
           "k": str(report.get("k", 10)), "encoder": model.encoder or "none"}
    if eval_run:
        out[EVAL_RUN_TAG] = str(eval_run)
    out.update({key: str(value) for key, value in tags.items()})
    for key in REQUIRED_TAGS:
        out.setdefault(key, "unknown")
    return out


def report_metrics(report: dict) -> dict[str, float]:
    """MLflow metrics of a report; null (NaN) values are left out.

    Keys: ``model/metric`` over all users, ``segment/model/metric`` for the other segments.

    Args:
        report: the evaluation report.
    """
    metrics = {metric_key(f"{source}/{metric}"): value
               for source, values in report.get("models", {}).items()
               for metric, value in values.items()}
    for segment, table in report.get("segments", {}).items():
        if segment == "all":
            continue
        metrics.update({metric_key(f"{segment}/{source}/{metric}"): value
                        for source, values in table.items() for metric, value in values.items()})
    return {key: float(value) for key, value in metrics.items()
            if value is not None and math.isfinite(float(value))}


class RegistrationError(RuntimeError):
    """Registering a version failed; nothing half-written was left (the message is one line).

    Args:
        message: what failed, one line.
        error_code: the MLflow error code of the cause, when it had one (retry decisions).
    """

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


def register(model: HybridRecommender, model_dir: Path, report: dict, params: dict,
             tags: dict[str, str], settings: Settings, eval_run: str | Path | None = None,
             top_k: TopK | None = None) -> RegisteredVersion:
    """Log a run (params, metrics, report, plots, pyfunc) and register it as a new version.

    The new version gets the ``challenger`` alias and the tags of ``version_tags``. A model
    without an encoder reference takes the ``encoder`` tag as its own (so that the served
    model can embed text queries). The model's artifacts are logged before the version is
    created (with its tags, in one call), and the alias is set last; if a step fails, the
    versions this run created are deleted again and the run is marked failed, so the registry
    never holds a version without its artifacts and no alias moves.

    Args:
        model: the trained recommender.
        model_dir: folder written by ``HybridRecommender.save`` (its metadata is kept).
        report: the evaluation report (DESIGN.md keys).
        params: configs to log, nested dicts allowed.
        tags: run and version tags (snapshot id, dataset, protocol, git commit...).
        settings: project settings.
        eval_run: the run folder with the train/test parts the report was measured on; the
            promotion compares challenger and champion on them.
        top_k: every known user's precomputed list (``lifecycle.batch.precompute``), stored
            in the model folder: the served version answers known users from it.

    Raises:
        RegistrationError: the MLflow store failed (unreachable, locked, full); one line.
    """
    if model.encoder is None and tags.get("encoder"):
        model = copy.copy(model)
        model.encoder = str(tags["encoder"])
    tags = version_tags(model, report, tags, None if eval_run is None else str(eval_run))
    name = settings.model_name
    step, left = "reaching the tracking store", None
    try:
        mlc = client(settings)
        step = "logging the run"
        with mlflow.start_run(tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
            try:
                for key, value in flatten("", params).items():
                    mlflow.log_param(key[:250], str(value)[:6000])
                mlflow.log_metrics(report_metrics(report))
                mlflow.log_dict(report, "report.json")
                for file, figure in report_plots(report).items():
                    mlflow.log_figure(figure, f"plots/{file}")
                step = "logging the model's artifacts"
                folder = model.save(Path(tmp) / "model", read_meta(model_dir))
                if top_k is not None:
                    top_k.save(folder / TOP_K_DIR)
                sig, example = signature(model)
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=HybridPyfunc(),
                    artifacts={ARTIFACT_KEY: str(folder)}, signature=sig,
                    input_example=example, pip_requirements=model_requirements())
                step = "creating the version"
                version = mlflow.register_model(info.model_uri, name, tags=tags)
                step = "setting the challenger alias"
                mlc.set_registered_model_alias(name, CHALLENGER, version.version)
            except Exception:
                left = _remove_versions(mlc, name, run.info.run_id)
                raise
    except Exception as error:
        outcome = ("no version was added and no alias moved" if not left else
                   f"run {left} may have left a version without the alias (see the log)")
        raise RegistrationError(
            f"registering {name} in MLflow ({settings.tracking_uri}) failed while {step}: "
            f"{_first_line(error)}; {outcome}", getattr(error, "error_code", None)) from error
    log.info("registered %s version %s (run %s)", name, version.version, run.info.run_id)
    return RegisteredVersion(name, str(version.version), run.info.run_id)


def model_requirements() -> list[str]:
    """``MODEL_REQUIREMENTS`` pinned at the installed versions."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def _remove_versions(mlc: MlflowClient, name: str, run_id: str) -> str | None:
    """Delete every version a failed registration run created; the run id if that failed.

    Whatever failed (the version, a lookup, the alias), every version of this run goes, not
    only one we got to hold a handle on. The store may be down by now: then the failure is
    logged and the run's id returned.
    """
    try:
        for created in mlc.search_model_versions(f"name='{name}' and run_id='{run_id}'"):
            mlc.delete_model_version(name, created.version)
    except Exception as error:  # noqa: BLE001  (the original error is the one to report)
        log.error("could not delete the versions of failed run %s: %s", run_id,
                  _first_line(error))
        return run_id
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_link(tracking_uri: str, run_id: str) -> str:
    """The MLflow UI address of a run on a tracking server, else its ``runs:/`` URI.

    Args:
        tracking_uri: the MLflow tracking URI.
        run_id: the run.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return f"runs:/{run_id}"
    experiment = MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def alias_version(mlc: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None.

    Args:
        mlc: the MLflow client.
        name: registered model name.
        alias: ``champion`` or ``challenger``.
    """
    try:
        return mlc.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def should_promote(challenger: float, champion: float | None, margin: float = 0.0) -> bool:
    """The policy: promote when there is no champion or the challenger beats it by ``margin``.

    Args:
        challenger: the challenger's score on the shared evaluation data (higher is better).
        champion: the champion's score on the same data, or None when there is no champion.
        margin: relative improvement required (0.01 = 1% better).
    """
    if champion is None:
        return True
    return challenger > champion * (1.0 + margin) if champion > 0 else challenger > champion


def promote(mlc: MlflowClient, name: str, version: str, challenger: float,
            champion: float | None, margin: float = 0.0, metric: str = "ndcg") -> bool:
    """Apply the policy to ``version`` and record the decision and both scores on it.

    The previous champion is remembered in the tag ``previous_champion`` for rollback.

    Args:
        mlc: the MLflow client.
        name: registered model name.
        version: the challenger version.
        challenger: its score on the shared evaluation data.
        champion: the champion's score on that data (None without a champion).
        margin: relative improvement required.
        metric: the compared metric's name (recorded).
    """
    decision = should_promote(challenger, champion, margin)
    current = alias_version(mlc, name, CHAMPION)
    tags = {"promotion.metric": metric, "promotion.margin": f"{margin:g}",
            "promotion.challenger_score": f"{challenger:.6f}",
            "promotion.champion_score": "none" if champion is None else f"{champion:.6f}",
            "promotion.champion_version": "none" if current is None else str(current.version),
            "promotion.decision": "promoted" if decision else "refused"}
    for key, value in tags.items():
        mlc.set_model_version_tag(name, version, key, value)
    if decision:
        if current is not None and str(current.version) != str(version):
            mlc.set_model_version_tag(name, version, "previous_champion", current.version)
        mlc.set_registered_model_alias(name, CHAMPION, version)
    log.info("version %s %s (challenger %s %.4f vs champion %s)", version,
             "promoted" if decision else "not promoted", metric, challenger, champion)
    return decision


def ensure_champion(settings: Settings) -> ModelVersion:
    """The champion version; when there is none yet, the first registered version becomes it.

    Args:
        settings: project settings (model name, tracking store).

    Raises:
        LookupError: nothing is registered under the model name.
    """
    mlc = client(settings)
    name = settings.model_name
    current = alias_version(mlc, name, CHAMPION)
    if current is not None:
        return current
    versions = [v for v in mlc.search_model_versions(f"name='{name}'")
                if PURGED_TAG not in v.tags]
    if not versions:
        raise LookupError(f"no version of model {name!r} is registered: run `recsys train` "
                          "first")
    first = min(versions, key=lambda v: int(v.version))
    mlc.set_model_version_tag(name, first.version, "promotion.decision",
                              "initial (first registered version)")
    mlc.set_registered_model_alias(name, CHAMPION, first.version)
    log.info("no champion yet: version %s (the first registered) becomes champion",
             first.version)
    return mlc.get_model_version(name, first.version)


@dataclass(frozen=True)
class Rollback:
    """A rollback of the champion alias.

    Args:
        from_version: the champion before.
        to_version: the champion now (the one before ``from_version``).
    """

    from_version: str
    to_version: str


def rollback(settings: Settings) -> Rollback:
    """Point ``champion`` back at the version that was champion before the current one.

    Both versions are tagged (``rollback.replaced_by`` / ``rollback.restored_from``).

    Args:
        settings: project settings.

    Raises:
        LookupError: no champion, or the champion has no recorded previous champion.
    """
    mlc = client(settings)
    name = settings.model_name
    current = alias_version(mlc, name, CHAMPION)
    if current is None:
        raise LookupError(f"model {name!r} has no champion to roll back")
    previous = current.tags.get("previous_champion")
    if not previous:
        raise LookupError(f"champion version {current.version} of {name!r} has no previous "
                          "champion to roll back to")
    try:
        found = mlc.get_model_version(name, previous)
    except MlflowException as error:
        raise LookupError(f"previous champion version {previous} of {name!r} no longer "
                          "exists") from error
    if PURGED_TAG in found.tags:
        raise LookupError(f"previous champion version {previous} of {name!r} was purged by "
                          f"erasure {found.tags[PURGED_TAG]}")
    mlc.set_registered_model_alias(name, CHAMPION, previous)
    mlc.set_model_version_tag(name, current.version, "rollback.replaced_by", previous)
    mlc.set_model_version_tag(name, previous, "rollback.restored_from", str(current.version))
    log.info("rolled champion back from version %s to %s", current.version, previous)
    return Rollback(str(current.version), str(previous))


def model_uri(settings: Settings, alias_or_version: str) -> str:
    """``models:/NAME@alias`` for an alias, ``models:/NAME/N`` for a version number.

    Args:
        settings: project settings (model name).
        alias_or_version: ``champion``, ``challenger`` or a version number.
    """
    name = settings.model_name
    if str(alias_or_version).isdigit():
        return f"models:/{name}/{alias_or_version}"
    return f"models:/{name}@{alias_or_version}"


def load_recommender(settings: Settings, alias: str) -> HybridRecommender | None:
    """The ``HybridRecommender`` behind an alias (or version number), or None.

    Args:
        settings: project settings (model name, tracking store).
        alias: ``champion``, ``challenger`` or a version number.
    """
    mlc = client(settings)
    if not str(alias).isdigit() and alias_version(mlc, settings.model_name, alias) is None:
        return None
    return load_version(settings, alias)


def load_version(settings: Settings, alias_or_version: str) -> HybridRecommender:
    """The ``HybridRecommender`` of a version that exists (MLflow raises when it does not).

    Args:
        settings: project settings (model name, tracking store).
        alias_or_version: a version number, or an alias known to point at one.

    Raises:
        LookupError: the version was purged by an erasure (its artifacts are gone).
    """
    mlc = client(settings)
    name = settings.model_name
    found = (mlc.get_model_version(name, str(alias_or_version)) if str(alias_or_version).isdigit()
             else mlc.get_model_version_by_alias(name, alias_or_version))
    if PURGED_TAG in found.tags:
        raise LookupError(f"version {found.version} of {name!r} was purged by erasure "
                          f"{found.tags[PURGED_TAG]}: its model files are deleted")
    loaded = mlflow.pyfunc.load_model(model_uri(settings, alias_or_version))
    return loaded.unwrap_python_model().model


def versions(settings: Settings) -> list[ModelVersion]:
    """Every version of the registered model, oldest first.

    Args:
        settings: project settings (model name, tracking store).
    """
    mlc = client(settings)
    found = mlc.search_model_versions(f"name='{settings.model_name}'")
    return sorted(found, key=lambda v: int(v.version))


def purge(settings: Settings, version: str, audit_id: str) -> None:
    """Mark a version as purged by an erasure, drop its aliases, delete its model artifacts.

    Its local serving copy (``served.copy_folder``) goes too.

    The version record, its run's params and metrics stay (lineage); the model files, which
    hold the erased users, go. Each step can be repeated, so an interrupted purge completes
    when run again.

    Args:
        settings: project settings (model name, tracking store).
        version: the version.
        audit_id: the erasure's audit id (tag value).
    """
    mlc = client(settings)
    name = settings.model_name
    found = mlc.get_model_version(name, version)
    mlc.set_model_version_tag(name, version, PURGED_TAG, audit_id)
    for alias in found.aliases:
        mlc.delete_registered_model_alias(name, alias)
    location = _model_location(mlc, found)
    repository = get_artifact_repository(location)
    if repository.list_artifacts():
        repository.delete_artifacts()
    served.drop_copy(settings, version, str(found.run_id))
    log.info("purged %s version %s (erasure %s): artifacts at %s and its local copy deleted",
             name, version, audit_id, location)


def _model_location(mlc: MlflowClient, version: ModelVersion) -> str:
    """The artifact location of a version's model files."""
    source = str(version.source)
    if source.startswith("models:/"):
        return str(mlc.get_logged_model(source.removeprefix("models:/").split("/")[0])
                   .artifact_location)
    return source
