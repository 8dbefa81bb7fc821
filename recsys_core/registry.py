"""MLflow logging, registration and the promotion policy."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from recsys_core.config import Settings
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.model.pyfunc import ARTIFACT_KEY, HybridPyfunc, signature

log = logging.getLogger(__name__)

EXPERIMENT = "recsys-hybrid"
CHAMPION = "champion"
CHALLENGER = "challenger"


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


def register(model: HybridRecommender, model_dir: Path, report: dict, params: dict,
             tags: dict[str, str], settings: Settings) -> RegisteredVersion:
    """Log a run (params, metrics, report, pyfunc) and register it as a new version.

    The new version gets the ``challenger`` alias. If anything fails after the version was
    created, the version is deleted and the run marked failed, so the registry never holds a
    half-written version.

    Args:
        model: the trained recommender (for the signature and input example).
        model_dir: folder written by ``HybridRecommender.save``.
        report: the evaluation report (DESIGN.md keys).
        params: configs to log, nested dicts allowed.
        tags: run and version tags (snapshot id, dataset, protocol, git commit...).
        settings: project settings.
    """
    mlc = client(settings)
    name = settings.model_name
    version: ModelVersion | None = None
    with mlflow.start_run(tags=tags) as run:
        try:
            for key, value in flatten("", params).items():
                mlflow.log_param(key[:250], str(value)[:6000])
            metrics = {metric_key(f"{source}/{metric}"): float(value)
                       for source, values in report["models"].items()
                       for metric, value in values.items()}
            mlflow.log_metrics(metrics)
            mlflow.log_dict(report, "report.json")
            sig, example = signature(model)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=HybridPyfunc(),
                artifacts={ARTIFACT_KEY: str(model_dir)}, signature=sig,
                input_example=example, registered_model_name=name)
            version = mlc.get_model_version(name, str(info.registered_model_version))
            for key, value in tags.items():
                mlc.set_model_version_tag(name, version.version, key, str(value))
            mlc.set_registered_model_alias(name, CHALLENGER, version.version)
        except Exception:
            # Whatever failed (log_model after registering, a lookup, a tag, the alias), delete
            # every version this run created, not only one we got to hold a handle on.
            for created in mlc.search_model_versions(
                    f"name='{name}' and run_id='{run.info.run_id}'"):
                mlc.delete_model_version(name, created.version)
            raise
    log.info("registered %s version %s (run %s)", name, version.version, run.info.run_id)
    return RegisteredVersion(name, str(version.version), run.info.run_id)


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
            champion: float | None, margin: float = 0.0) -> bool:
    """Apply the policy to ``version`` and record the decision on it.

    The previous champion is remembered in the tag ``previous_champion`` for rollback.

    Args:
        mlc: the MLflow client.
        name: registered model name.
        version: the challenger version.
        challenger: its score on the shared evaluation data.
        champion: the champion's score on that data (None without a champion).
        margin: relative improvement required.
    """
    decision = should_promote(challenger, champion, margin)
    current = alias_version(mlc, name, CHAMPION)
    mlc.set_model_version_tag(name, version, "promotion.challenger_score", f"{challenger:.6f}")
    mlc.set_model_version_tag(name, version, "promotion.champion_score",
                              "none" if champion is None else f"{champion:.6f}")
    mlc.set_model_version_tag(name, version, "promotion.decision",
                              "promoted" if decision else "refused")
    if decision:
        if current is not None:
            mlc.set_model_version_tag(name, version, "previous_champion", current.version)
        mlc.set_registered_model_alias(name, CHAMPION, version)
    log.info("version %s %s (challenger %.4f vs champion %s)", version,
             "promoted" if decision else "not promoted", challenger, champion)
    return decision


def load_recommender(settings: Settings, alias: str) -> HybridRecommender | None:
    """The ``HybridRecommender`` behind an alias of the registered model, or None.

    Args:
        settings: project settings (model name, tracking store).
        alias: ``champion`` or ``challenger``.
    """
    mlc = client(settings)
    if alias_version(mlc, settings.model_name, alias) is None:
        return None
    loaded = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{alias}")
    return loaded.unwrap_python_model().model
