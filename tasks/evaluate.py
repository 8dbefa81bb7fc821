"""Evaluation task: fuse, evaluate every source and the fusion on test, save the model."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.fusion.weighted import FusionConfig
from recsys_core.runstore import RunStore
from tasks.common import CACHED


@task(cache_policy=CACHED)
def evaluate(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: dict, k: int,
             dataset: str, encoder: str | None = None, embeddings: str | None = None) -> dict:
    """Evaluate on the test part; returns the report and the saved model's folder."""
    store = RunStore(run)
    config = FusionConfig.model_validate(fusion)
    final = pipeline.evaluate_run(store, sources, baselines, config, k, {"dataset": dataset},
                                  encoder, embeddings)
    report = pipeline.report_run(final, dataset, store.meta["protocol"], k, config)
    rows = [{"model": name, **values} for name, values in report["models"].items()]
    create_table_artifact(rows, key="test-metrics", description=f"{dataset}, k={k}")
    get_run_logger().info("fused %s", report["models"]["fused"])
    return {"report": report, "model_dir": str(final.model_dir)}
