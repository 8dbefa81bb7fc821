from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recsys_core.config import Settings, get_settings

PATHS = ("warehouse_path", "mlflow_db", "artifacts_dir", "prefect_home", "reports_dir",
         "data_docs_dir", "models_dir")


def test_paths_absolute_under_env_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "state"))
    settings = Settings()
    assert settings.home == (tmp_path / "state").resolve()
    for name in PATHS:
        path = getattr(settings, name)
        assert path.is_absolute() and path.parent == settings.home, name
    assert len({getattr(settings, name) for name in PATHS}) == len(PATHS)


def test_relative_home_resolved_against_cwd_once(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.setenv("RECSYS_HOME", "rel/state")
    settings = Settings()
    monkeypatch.chdir(tmp_path / "b")  # a Prefect worker changing directory
    assert settings.home == (tmp_path / "a" / "rel" / "state").resolve()
    assert settings.mlflow_db == (tmp_path / "a" / "rel" / "state" / "mlflow.db").resolve()


def test_default_home_is_absolute(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RECSYS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.home == (tmp_path / ".recsys").resolve()
    assert settings.home.is_absolute()


def test_home_expands_user(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings(home="~/state").home == (tmp_path / "state").resolve()


def test_env_prefix(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_K", "7")
    monkeypatch.setenv("RECSYS_MODEL_NAME", "from-env")
    monkeypatch.setenv("RECSYS_TUNING_TRIALS", "3")
    monkeypatch.setenv("RECSYS_ENCODER", "/models/bert")
    monkeypatch.setenv("SEED", "999")  # unprefixed: ignored
    settings = get_settings()
    assert (settings.k, settings.model_name, settings.tuning_trials) == (7, "from-env", 3)
    assert settings.encoder == "/models/bert"
    assert settings.seed == 42


def test_keyword_overrides_beat_env(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_MODEL_NAME", "from-env")
    assert Settings(model_name="explicit").model_name == "explicit"


def test_get_settings_reads_env_each_call(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_SEED", "1")
    assert get_settings().seed == 1
    monkeypatch.setenv("RECSYS_SEED", "2")
    assert get_settings().seed == 2


def test_bad_env_value_rejected(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_K", "ten")
    with pytest.raises(ValidationError):
        Settings()


def test_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.k = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.home = Path("/elsewhere")  # type: ignore[misc]


def test_tracking_uri(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(home=tmp_path)
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert settings.tracking_uri == "http://mlflow:5000"


def test_ensure_dirs_creates_state_folders(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "new")
    settings.ensure_dirs()
    for name in ("artifacts_dir", "prefect_home", "reports_dir", "data_docs_dir", "models_dir"):
        assert getattr(settings, name).is_dir(), name
    settings.ensure_dirs()  # idempotent
