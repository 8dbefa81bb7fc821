"""What the MLflow store holds, for people: recent training runs and the registered versions.

Reading never writes: a local store that does not exist yet reads as empty (no experiment or
database is created), unlike ``registry.client``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from recsys_core.config import Settings
from recsys_core.lifecycle.registry import EXPERIMENT, metric_key


@dataclass(frozen=True)
class TrainingRun:
    """One logged training run.

    Args:
        run_id: the MLflow run.
        started: when it started (UTC).
        dataset: the dataset it trained on.
        protocol: its split protocol.
        k: its metric cut-off.
        fused_ndcg: the fused model's test NDCG@k (None when not logged).
    """

    run_id: str
    started: datetime
    dataset: str
    protocol: str
    k: int
    fused_ndcg: float | None


@dataclass(frozen=True)
class Version:
    """One registered version and its promotion decision.

    Args:
        version: the version number.
        run_id: the run that logged it.
        created: when it was registered (UTC).
        aliases: its aliases (``champion``, ``challenger``).
        dataset: the dataset it trained on.
        decision: ``promoted``, ``refused``, ``initial (...)``, or None before any check.
        challenger_score: its score in that check.
        champion_score: the champion's score on the same data (None without a champion).
        champion_version: the champion it was compared with (None without one).
    """

    version: str
    run_id: str
    created: datetime
    aliases: tuple[str, ...]
    dataset: str
    decision: str | None
    challenger_score: float | None
    champion_score: float | None
    champion_version: str | None


def training_runs(settings: Settings, limit: int = 5) -> list[TrainingRun]:
    """The latest training runs, newest first.

    Args:
        settings: project settings (tracking store).
        limit: at most this many.
    """
    if not settings.has_tracking_store:
        return []
    mlc = MlflowClient(settings.tracking_uri)
    experiment = mlc.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    runs = mlc.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                           max_results=limit)
    out = []
    for run in runs:
        tags, k = run.data.tags, int(run.data.tags.get("k", 10))
        out.append(TrainingRun(
            run_id=run.info.run_id, started=_utc(run.info.start_time),
            dataset=tags.get("dataset", "unknown"), protocol=tags.get("protocol", "unknown"),
            k=k, fused_ndcg=run.data.metrics.get(metric_key(f"fused/ndcg@{k}"))))
    return out


def versions(settings: Settings, limit: int = 10) -> list[Version]:
    """The latest registered versions of the settings' model, newest first.

    Args:
        settings: project settings (model name, tracking store).
        limit: at most this many.
    """
    if not settings.has_tracking_store:
        return []
    mlc = MlflowClient(settings.tracking_uri)
    found = mlc.search_model_versions(f"name='{settings.model_name}'")
    if not found:
        return []
    aliases: dict[str, list[str]] = {}  # search results carry no aliases: the model has them
    for alias, version in mlc.get_registered_model(settings.model_name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    newest = sorted(found, key=lambda v: int(v.version), reverse=True)[:limit]
    return [Version(
        version=str(v.version), run_id=v.run_id or "", created=_utc(v.creation_timestamp),
        aliases=tuple(sorted(aliases.get(str(v.version), []))),
        dataset=v.tags.get("dataset", "unknown"),
        decision=v.tags.get("promotion.decision"),
        challenger_score=_score(v.tags.get("promotion.challenger_score")),
        champion_score=_score(v.tags.get("promotion.champion_score")),
        champion_version=_none(v.tags.get("promotion.champion_version")),
    ) for v in newest]


def resolve(settings: Settings, alias: str) -> str | None:
    """The version an alias (or a version number) names, or None when there is none.

    Args:
        settings: project settings (model name, tracking store).
        alias: ``champion``, ``challenger`` or a version number.
    """
    if not settings.has_tracking_store:
        return None
    mlc, name = MlflowClient(settings.tracking_uri), settings.model_name
    try:
        found = (mlc.get_model_version(name, alias) if alias.isdigit()
                 else mlc.get_model_version_by_alias(name, alias))
    except MlflowException:
        return None
    return str(found.version)


def _utc(millis: int | None) -> datetime:
    return datetime.fromtimestamp((millis or 0) / 1000, tz=UTC)


def _none(value: str | None) -> str | None:
    return None if value in (None, "none") else value


def _score(value: str | None) -> float | None:
    text = _none(value)
    return None if text is None else float(text)
