"""Environment defaults that must be in place before Prefect or MLflow is imported."""

from __future__ import annotations

import os

from recsys_core.config import get_settings


def apply_defaults() -> None:
    """Set offline and Prefect defaults (a variable the user already set wins).

    Prefect 3 starts a temporary API server when PREFECT_API_URL is unset; on a 2-core
    machine that takes 12-27 s, beyond its 20 s default start timeout.
    """
    settings = get_settings()
    settings.ensure_dirs()
    defaults = {
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "recsys_core",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(settings.results_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "GIT_PYTHON_REFRESH": "quiet",
        # a command's stdout is its answer (`recsys recommend` copies a version once)
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
