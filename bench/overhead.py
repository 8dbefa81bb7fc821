"""Orchestration overhead: the Prefect train flow beside the same stages as plain calls.

In one process, on the same data: first the stages as plain ``recsys_core.pipeline`` calls
(ingest, features, embed, tune_sources, every source on fit, tune_fusion, every source and the
baseline on train, evaluate, register), then ``flows.train.train_flow``, each in its own fresh
state folder (so neither finds the other's embedding cache, task cache or MLflow champion);
``--repeat N`` alternates them N times and keeps the fastest run of each.
A small warm-up run of the plain stages comes first, so that neither measured run pays for
first-call costs (imports, torch and numba initialisation). The temporary Prefect API server
starts before the flow is timed (a real deployment talks to a running server); its start-up is
shown on its own row.

Overhead ratio = flow wall time / sum of plain stage times - 1 (target <= 15%). On a shared,
loaded machine the two runs see different loads; the last line is immune to that: in the same
flow run, the time outside task bodies (flow and task orchestration, result persistence,
artifacts) against the time inside them (task run times from the Prefect API).

    python bench/overhead.py                       # ../shared/data/ml-latest-small
    python bench/overhead.py --data synthetic      # about 60k synthetic interactions
    python bench/overhead.py --data synthetic:5000 --trials 5
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "ml-latest-small"
STATE = Path(tempfile.mkdtemp(prefix="recsys-overhead-"))
os.environ["RECSYS_HOME"] = str(STATE / "flow")  # the flow's result storage (fixed at import)

from flows.app.env import apply_defaults  # noqa: E402

apply_defaults()

from uuid import UUID  # noqa: E402

from prefect import flow  # noqa: E402
from prefect.client.orchestration import get_client  # noqa: E402
from prefect.client.schemas.filters import (  # noqa: E402
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)

from data_checks.runner import validate_dataset  # noqa: E402
from flows.train import train_flow  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.config import Settings  # noqa: E402
from recsys_core.data.loaders import read_dataset  # noqa: E402
from recsys_core.embed.cache import EmbeddingCache  # noqa: E402
from recsys_core.embed.config import EncoderConfig  # noqa: E402
from recsys_core.embed.device import resolve_device  # noqa: E402
from recsys_core.embed.engine import plan_shards, shard_size_for, shared_encoder  # noqa: E402
from recsys_core.lifecycle import promotion, registry  # noqa: E402
from recsys_core.scoring import TrainOptions  # noqa: E402
from recsys_core.training import BASELINES, TrainingConfig  # noqa: E402
from recsys_core.warehouse.store import Warehouse  # noqa: E402


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def plain_run(settings: Settings, data: str, encoder: str, config: TrainingConfig
              ) -> dict[str, float]:
    """The train flow's stages as plain calls; returns seconds per stage (the flow's keys)."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # MLflow sets it; each home has its store
    settings.ensure_dirs()
    t: dict[str, float] = {}
    with timed(t, "ingest"):
        result = validate_dataset(read_dataset(data), settings.quarantine_threshold)
        result.raise_if_failed()
        snapshot = Warehouse(settings.warehouse_path).load(result.dataset, result.quarantine)
    with timed(t, "features"):
        store = pipeline.prepare_run(settings, snapshot, config.protocol, config.seed,
                                     config.carves)
    with timed(t, "embed"):  # as tasks/embed.py: shards the cache lacks, then the run's matrix
        text_encoder = shared_encoder(EncoderConfig(name_or_path=encoder, device=settings.device))
        cache = EmbeddingCache(settings.warehouse_path)
        for shard in plan_shards(store.documents(), text_encoder.encoder_id, cache,
                                 shard_size_for(text_encoder, settings.shard_documents)):
            cache.put(text_encoder.encoder_id, shard.hashes,
                      text_encoder.encode(list(shard.texts)))
        _, embeddings = pipeline.embed_items(store, settings, encoder)
    options = TrainOptions(seed=config.seed, device=resolve_device(settings.device).type)
    config = pipeline.size_plan(store, config, settings.large_run)  # the flow's size guard
    with timed(t, "tune_sources"):
        sources = pipeline.tune_sources(store, config.sources, options, config.source_trials,
                                        config.k)

    def train_all(names: list[str], part: str) -> dict[str, Path]:
        paths = {}
        for name in names:
            with timed(t, f"train_{name}"):
                paths[name] = pipeline.train_source(store, name, sources[name], part, options,
                                                    embeddings)
        return paths

    fused = [name for name in config.fused_sources if name in sources]
    carves = [train_all(fused, part) for part, _ in store.carves()[:config.carves]]
    with timed(t, "tune_fusion"):
        fusion = pipeline.tune_fusion(store, carves, config.k, config.trials, config.seed).config
    final_sources = train_all(fused, "train") if config.refit else carves[0]
    baselines = train_all([n for n in sources if n in BASELINES], "train")
    with timed(t, "evaluate"):
        final = pipeline.evaluate_run(store, final_sources, baselines, fusion, config.k,
                                      {"dataset": result.dataset.name}, encoder, embeddings)
        report = pipeline.report_run(final, result.dataset.name, config.protocol, config.k,
                                     fusion)
    with timed(t, "register"):
        version = registry.register(final.model, final.model_dir, report.to_json(),
                                    {"training": config.model_dump()},
                                    {"snapshot_id": snapshot}, settings, eval_run=store.folder)
        promotion.gate(settings, version.version, report.score("fused"),
                       promotion.run_data(str(store.folder), config.k))
    return t


def task_seconds(flow_run_id: UUID) -> float:
    """Seconds the flow run's task bodies ran (its subflows' tasks too, not their wrappers)."""
    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id, *(run.id for run in subflows)])))
    wrappers = {run.parent_task_run_id for run in subflows}
    return sum(run.total_run_time.total_seconds() for run in runs if run.id not in wrappers)


@flow(name="overhead-warm-up")
def _noop() -> None:
    """Starts the temporary Prefect API server."""


def clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA),
                        help="dataset directory or synthetic[:N] (default ml-latest-small)")
    parser.add_argument("--encoder", default=None, help="encoder (default: the settings')")
    parser.add_argument("--trials", type=int, default=None, help="fusion tuning trials")
    parser.add_argument("--protocol", default="stratified")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate plain and flow runs this often; the fastest of each counts")
    args = parser.parse_args()
    if not args.data.startswith("synthetic") and not Path(args.data).is_dir():
        print(f"skipped: {args.data} is not present")
        return
    settings = Settings()
    encoder = args.encoder or settings.encoder
    config = TrainingConfig(protocol=args.protocol, k=args.k, seed=settings.seed,
                            trials=settings.tuning_trials if args.trials is None
                            else args.trials)
    print(f"data {args.data}; {platform.node()}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}; state {STATE}")
    warm, _ = clock(lambda: plain_run(Settings(home=STATE / "warm-up"), "synthetic:2000",
                                      encoder, config.model_copy(update={"trials": 2})))
    server, _ = clock(_noop)
    plains, flows = [], []
    for i in range(args.repeat):
        plains.append(clock(lambda i=i: plain_run(Settings(home=STATE / f"plain-{i}"),
                                                  args.data, encoder, config)))
        os.environ["RECSYS_HOME"] = str(STATE / f"flow-{i}")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        flows.append(clock(lambda: train_flow(
            data=args.data, protocol=config.protocol, k=config.k, encoder=encoder,
            trials=config.trials, seed=config.seed, return_state=True)))
    plain_wall, plain = min(plains, key=lambda run: run[0])
    flow_wall, state = min(flows, key=lambda run: run[0])
    report, in_tasks = state.result(), task_seconds(state.state_details.flow_run_id)
    flow_stages = report.timings_s
    print(f"\nwarm-up (plain, synthetic:2000) {warm:.1f}s; Prefect API server start + a "
          f"no-op flow {server:.1f}s (not counted); fastest of {args.repeat} run(s) each: "
          f"plain {[round(w, 1) for w, _ in plains]}, flow {[round(w, 1) for w, _ in flows]}\n")
    print(f"{'stage':<22}{'plain s':>10}{'in flow s':>11}{'overhead':>10}")
    for stage, seconds in plain.items():
        flowed = flow_stages.get(stage, float("nan"))
        print(f"{stage:<22}{seconds:>10.2f}{flowed:>11.2f}{flowed / seconds - 1:>10.1%}")
    total = sum(plain.values())
    print(f"{'sum of stages':<22}{total:>10.2f}{sum(flow_stages.values()):>11.2f}")
    print(f"{'wall time':<22}{plain_wall:>10.2f}{flow_wall:>11.2f}")
    print(f"\noverhead ratio (flow wall / sum of plain stages - 1): "
          f"{flow_wall / total - 1:.1%} (target <= 15%)")
    print(f"in the same flow run: task bodies {in_tasks:.2f}s of {flow_wall:.2f}s; outside them "
          f"(flow and task orchestration, artifacts) {flow_wall - in_tasks:.2f}s = "
          f"{flow_wall / in_tasks - 1:.1%} of the task time")
    fused = report.score("fused")
    print(f"flow's fused ndcg@{config.k}: {fused:.4f}")


if __name__ == "__main__":
    main()
