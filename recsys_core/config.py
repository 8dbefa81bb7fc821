"""One settings object for the whole project (env prefix ``RECSYS_``).

Every state path is resolved to an absolute path, because Prefect workers change directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Project settings, read from ``RECSYS_*`` environment variables.

    Args:
        home: the state folder holding the warehouse, MLflow store, Prefect home, reports and
            logs.
        encoder: Hugging Face encoder name or local path; the default is the packaged
            all-MiniLM-L6-v2.
        device: ``auto`` (cuda, then mps, then cpu) or a torch device string.
        seed: global seed for splits, models and tuning.
        k: cut-off for metrics and recommendations.
        model_name: the registered MLflow model.
        quarantine_threshold: share of bad rows above which ingestion fails.
        tuning_trials: Optuna trials for the fusion tuner.
        large_run: training interactions above which a run skips the per-source
            hyperparameter search and the refit (see ``recsys_core.pipeline.size_plan``).
        task_runner: where the sharded stages (embedding shards, batch recommendation and
            evaluation over user batches) run: ``local`` (threads in the flow's process) or
            ``dask`` (prefect-dask's ``DaskTaskRunner``).
        dask_address: scheduler address of an existing Dask cluster (``tcp://host:8786``);
            unset, ``dask`` starts a temporary local cluster per sharded stage.
        dask_workers: worker processes of that temporary local cluster (default: Dask's
            choice from the CPU count).
        train_workers: worker processes that train independent sources side by side (the
            validation carves' and the refit's; ``recsys_core.workers``); 1 trains them one
            after another in the flow's process.
        shard_users: users per batch-recommendation or evaluation shard.
        shard_documents: documents per embedding shard (default: 64 of the encoder's batches).
        top_k: K of the lists precomputed for every known user when a version is registered
            (a known user's request for at most K items is answered from them).
        events_poll_s: how often a served model looks for newly exported events (seconds).
    """

    model_config = SettingsConfigDict(env_prefix="RECSYS_", frozen=True)

    home: Path = Field(default=Path(".recsys"))
    encoder: str = DEFAULT_ENCODER
    device: str = "auto"
    seed: int = 42
    k: int = 10
    model_name: str = "recsys-hybrid"
    quarantine_threshold: float = 0.2
    tuning_trials: int = 30
    large_run: int = Field(default=3_000_000, gt=0)
    task_runner: Literal["local", "dask"] = "local"
    dask_address: str | None = None
    dask_workers: int | None = Field(default=None, gt=0)
    train_workers: int = Field(default=2, ge=1)
    shard_users: int = Field(default=50_000, gt=0)
    shard_documents: int | None = Field(default=None, gt=0)
    top_k: int = Field(default=100, gt=0)
    events_poll_s: float = Field(default=2.0, gt=0)

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def warehouse_path(self) -> Path:
        """DuckDB warehouse file."""
        return self.home / "warehouse.duckdb"

    @property
    def mlflow_db(self) -> Path:
        """MLflow sqlite tracking + registry store."""
        return self.home / "mlflow.db"

    @property
    def artifacts_dir(self) -> Path:
        """MLflow artifact store."""
        return self.home / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        """PREFECT_HOME for local runs."""
        return self.home / "prefect"

    @property
    def results_dir(self) -> Path:
        """Prefect task results and cache records (a rerun skips the stages found here)."""
        return self.prefect_home / "storage"

    @property
    def reports_dir(self) -> Path:
        """Training reports (JSON)."""
        return self.home / "reports"

    @property
    def data_docs_dir(self) -> Path:
        """Great Expectations data docs."""
        return self.home / "data_docs"

    @property
    def runs_dir(self) -> Path:
        """Training run folders (``RunStore``): one per snapshot, protocol and seed."""
        return self.home / "runs"

    @property
    def models_dir(self) -> Path:
        """Locally saved model folders before they are logged to MLflow."""
        return self.home / "models"

    @property
    def logs_dir(self) -> Path:
        """Log files of CLI commands (one per command run)."""
        return self.home / "logs"

    @property
    def events_dir(self) -> Path:
        """Interactions appended after a snapshot, exported for served models to fold in."""
        return self.home / "events"

    @property
    def serving_dir(self) -> Path:
        """Local copies of registered versions' model folders, as servers and the CLI read them."""
        return self.home / "serving"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: ``MLFLOW_TRACKING_URI`` when set, else the local sqlite store."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db}"

    @property
    def has_tracking_store(self) -> bool:
        """Whether the tracking store exists: a server, or a local database created already."""
        if self.tracking_uri == f"sqlite:///{self.mlflow_db}":
            return self.mlflow_db.is_file()
        return True

    def ensure_dirs(self) -> None:
        """Create the state folders."""
        for path in (self.home, self.artifacts_dir, self.prefect_home, self.reports_dir,
                     self.data_docs_dir, self.models_dir):
            path.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests change the environment)."""
    return Settings()


def first_error(exc: ValidationError) -> tuple[str, str]:
    """A validation error's first error as (dotted field path, reason), for one-line messages.

    Args:
        exc: a pydantic validation error.
    """
    error = exc.errors()[0]
    return (".".join(str(part) for part in error["loc"]),
            error["msg"].removeprefix("Value error, "))
