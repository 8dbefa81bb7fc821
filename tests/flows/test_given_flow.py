"""``recsys train --protocol given --k 5,10`` end to end on a dataset carrying its split."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.app.cli import app
from recsys_core.data import schema as S
from recsys_core.data.synthetic import SyntheticConfig, generate
from recsys_core.evaluation.metrics import metric_keys
from tests.tiny_bert import build_tiny_model


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """Synthetic data as a generic directory whose split column is a leave-one-out split
    (one row per pair, so no held-out pair is seen before)."""
    data = generate(SyntheticConfig(n_users=80, n_items=60, n_interactions=1600, seed=5))
    inter = (data.interactions.unique([S.USER_ID, S.ITEM_ID], keep="last", maintain_order=True)
             .sort(S.USER_ID, S.TS, maintain_order=True))
    position = pl.int_range(pl.len()).over(S.USER_ID)
    n = pl.len().over(S.USER_ID)
    inter = inter.with_columns(pl.when(position == n - 1).then(pl.lit("test"))
                               .when(position == n - 2).then(pl.lit("valid"))
                               .otherwise(pl.lit("train")).alias(S.SPLIT))
    directory = tmp_path_factory.mktemp("given-data")
    inter.drop(S.RATING).write_parquet(directory / "interactions.parquet")
    data.items.write_parquet(directory / "items.parquet")
    return directory, dict(inter[S.SPLIT].value_counts().iter_rows())


def test_train_reproduces_the_given_split_at_two_cutoffs(prefect_harness, split_dir,
                                                         tmp_path: Path) -> None:
    directory, labels = split_dir
    report_path = tmp_path / "r.json"
    encoder = str(build_tiny_model(tmp_path / "bert"))
    result = CliRunner().invoke(app, [
        "train", "--data", str(directory), "--protocol", "given", "--k", "5,10",
        "--encoder", encoder, "--trials", "2", "--no-register", "--report", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert (report["protocol"], report["k"]) == ("given", 5)
    assert list(report["models"]["fused"]) == [*metric_keys(5), *metric_keys(10)]
    rows = report["data"]["rows"]  # (further validation carves roll back from fit)
    assert {part: rows[part] for part in ("train", "test", "fit", "valid", "rejected")} == {
        "train": labels["train"] + labels["valid"], "test": labels["test"],
        "fit": labels["train"], "valid": labels["valid"], "rejected": 0}
    assert "given @ 5" in result.output and "given @ 10" in result.output


def test_given_without_a_split_is_a_one_line_error(prefect_harness) -> None:
    result = CliRunner().invoke(app, ["train", "--data", "synthetic:300", "--protocol", "given",
                                      "--no-register"])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("error: protocol 'given' needs the published split") and (
        "'split' column" in message)
