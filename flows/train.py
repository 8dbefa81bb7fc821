"""The training flow: ingest -> features -> embed -> sources -> fusion -> evaluate -> register."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from recsys_core.config import get_settings
from recsys_core.training import BASELINES, TrainingConfig
from tasks.evaluate import evaluate
from tasks.ingest import ingest
from tasks.register import promote, register
from tasks.train import embed, prepare, train_source, tune_fusion


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 3)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


@flow(name="train")
def train_flow(data: str = "synthetic", protocol: str = "stratified", k: int = 10,
               encoder: str | None = None, register_model: bool = True,
               trials: int | None = None, seed: int | None = None,
               report_path: str | None = None) -> dict:
    """Train, evaluate and register the hybrid recommender; returns the report."""
    settings = get_settings()
    config = TrainingConfig(protocol=protocol, k=k, seed=settings.seed if seed is None else seed,
                            trials=settings.tuning_trials if trials is None else trials)
    encoder = encoder or settings.encoder
    timings: dict[str, float] = {}
    with _timed(timings, "ingest"):
        ingested = ingest(data)
    with _timed(timings, "features"):
        run = prepare(ingested["snapshot_id"], config.protocol, config.seed)
    with _timed(timings, "embed"):
        embeddings = embed(run, encoder)

    def train_all(names: list[str], part: str) -> dict[str, str]:
        paths = {}
        for name in names:
            with _timed(timings, f"train_{name}"):
                paths[name] = train_source(run, name, config.sources[name], part, config.seed,
                                           embeddings)
        return paths

    fused = config.fused_sources
    fit_sources = train_all(fused, "fit")
    with _timed(timings, "tune_fusion"):
        tuned = tune_fusion(run, fit_sources, config.k, config.trials, config.seed)
    sources = train_all(fused, "train") if config.refit else fit_sources
    baselines = train_all([n for n in config.sources if n in BASELINES], "train")
    with _timed(timings, "evaluate"):
        evaluated = evaluate(run, sources, baselines, tuned["config"], config.k,
                             ingested["dataset"], encoder, embeddings)
    report = evaluated["report"]
    decision = None
    if register_model:
        tags = {"snapshot_id": ingested["snapshot_id"], "dataset": ingested["dataset"],
                "protocol": config.protocol, "encoder": encoder, "git_commit": _git_commit(),
                "validation": "passed" if ingested["validation"]["success"] else "failed"}
        params = {"training": config.model_dump(), "fusion": tuned["config"],
                  "encoder": encoder, "data": data}
        with _timed(timings, "register"):
            version = register(evaluated["model_dir"], report, params, tags)
            decision = promote(run, version["version"],
                               report["models"]["fused"][f"ndcg@{config.k}"], config.k)
        report["registered"] = {"name": version["name"], "version": version["version"],
                                "run_id": version["run_id"], **decision}
    report["timings_s"] = timings
    report["validation"] = ingested["validation"]
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(report, indent=2))
    create_markdown_artifact(_markdown(report), key="training-report")
    return report


def _markdown(report: dict) -> str:
    k = report["k"]
    lines = [f"# Training report: {report['dataset']} ({report['protocol']}, k={k})", "",
             "| model | " + " | ".join(next(iter(report["models"].values()))) + " |",
             "|---|" + "---|" * len(next(iter(report["models"].values())))]
    for name, values in report["models"].items():
        cells = " | ".join("-" if v is None else f"{v:.4f}" for v in values.values())
        lines.append(f"| {name} | {cells} |")
    lines += ["", f"Fusion weights: `{json.dumps(report['fusion'].get('weights', {}))}`",
              f"Registered: `{json.dumps(report.get('registered'))}`",
              f"Stage seconds: `{json.dumps(report['timings_s'])}`"]
    return "\n".join(lines)
