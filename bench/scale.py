"""Scale benchmark: the whole training pipeline on synthetic data of growing size.

For each size N (interactions; users and items grow with N, see
``recsys_core.data.loaders.synthetic_config``) a fresh subprocess runs every training stage
once, in order, in a temporary ``RECSYS_HOME``: generate, validate + warehouse load (ingest),
features + split, embed item documents, the size plan (``pipeline.size_plan``: EASE's item
guard; above ``Settings.large_run`` no per-source search and no refit), per-source search,
train each fused source on ``fit``, tune the fusion, retrain each source on ``train``,
train the baselines, evaluate (fuse, full ranking of every test user, save the model). A
sampler thread records each stage's wall time and peak RSS (the process and its children).
The parent prints one markdown table per size, then the fitted growth exponent of every
stage's time and peak RSS (the slope of log(value) against log(N) by least squares, over
the sizes that ran).

    python bench/scale.py                              # 100k, 1M, 10M
    python bench/scale.py --sizes 100000,1000000
    python bench/scale.py --encoder /path/to/small-encoder   # reported in the header

The default encoder is the packaged all-MiniLM-L6-v2 (what ``recsys train`` uses).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)


class Monitor:
    """Wall time and peak RSS (process + children) per stage, sampled every ``interval`` s."""

    def __init__(self, on_stage, interval: float = 0.05) -> None:
        self.on_stage = on_stage  # called with the stages so far after each one
        self.interval = interval
        self.process = psutil.Process()
        self.stages: dict[str, dict[str, float]] = {}
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = self._rss()
            with self._lock:
                self._peak = max(self._peak, rss)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        with self._lock:
            self._peak = self._rss()
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        with self._lock:
            peak = max(self._peak, self._rss())
        self.stages[name] = {"seconds": round(seconds, 2), "rss_gib": round(peak / 2**30, 3)}
        print(f"  {name}: {seconds:.1f}s, peak RSS {peak / 2**30:.2f} GiB", file=sys.stderr,
              flush=True)
        self.on_stage(self.stages)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def run_size(n: int, encoder: str, trials: int, home: Path, out: Path) -> dict:
    """Every training stage once at size ``n``, in this process; per-stage time and RSS."""
    os.environ["RECSYS_HOME"] = str(home)
    from data_checks.runner import validate_dataset
    from recsys_core import pipeline
    from recsys_core.config import get_settings
    from recsys_core.data.loaders import synthetic_config
    from recsys_core.data.synthetic import generate
    from recsys_core.fusion.weighted import FusionConfig
    from recsys_core.scoring import TrainOptions
    from recsys_core.training import BASELINES, TrainingConfig
    from recsys_core.warehouse.store import Warehouse

    settings = get_settings()
    settings.ensure_dirs()
    config = TrainingConfig(trials=trials)
    options = TrainOptions(seed=config.seed, device="cpu")
    facts: dict = {}
    monitor = Monitor(lambda stages: out.write_text(json.dumps(
        {"n": n, "stages": stages, **facts, "error": "stopped before the end"})))
    try:
        with monitor.stage("generate"):
            dataset = generate(synthetic_config(n))
        facts.update(interactions=dataset.interactions.height, items=dataset.items.height)
        with monitor.stage("ingest"):
            result = validate_dataset(dataset, settings.quarantine_threshold)
            result.raise_if_failed()
            snapshot = Warehouse(settings.warehouse_path).load(result.dataset,
                                                               result.quarantine)
        del dataset, result
        with monitor.stage("features"):
            store = pipeline.prepare_run(settings, snapshot, config.protocol, config.seed,
                                         config.carves)
        facts["users"] = len(store.vocabularies()[0])
        with monitor.stage("embed"):
            _, embeddings = pipeline.embed_items(store, settings, encoder)
        with monitor.stage("size_guard"):
            planned = pipeline.size_plan(store, config, settings.large_run)
        facts["skipped"] = sorted(set(config.sources) - set(planned.sources))
        facts["plan"] = {"source_trials": planned.source_trials, "refit": planned.refit}
        config = planned
        if config.source_trials:
            with monitor.stage("tune_sources"):
                config = config.model_copy(update={"sources": pipeline.tune_sources(
                    store, config.sources, options, config.source_trials, config.k)})
        carves: list[dict] = []
        for part, _ in store.carves()[:config.carves]:
            carves.append({})
            for name in config.fused_sources:
                with monitor.stage(f"fit_{name}"):
                    carves[-1][name] = pipeline.train_source(store, name, config.sources[name],
                                                             part, options, embeddings)
        fit = carves[0]
        with monitor.stage("tune_fusion"):
            tuned = pipeline.tune_fusion(store, carves, config.k, config.trials, config.seed)
        train = {}
        for name in config.fused_sources if config.refit else ():
            with monitor.stage(f"train_{name}"):
                train[name] = pipeline.train_source(store, name, config.sources[name],
                                                    "train", options, embeddings)
        if not config.refit:  # the sources tuned on fit are the final ones (size_plan)
            train = fit
        baselines = {}
        for name in BASELINES:
            with monitor.stage(f"train_{name}"):
                baselines[name] = pipeline.train_source(store, name, config.sources[name],
                                                        "train", options, embeddings)
        with monitor.stage("evaluate"):
            final = pipeline.evaluate_run(store, train, baselines,
                                          FusionConfig.model_validate(tuned.config.model_dump()),
                                          config.k, encoder=encoder, embeddings=embeddings)
        facts["ndcg"] = {name: round(values[f"ndcg@{config.k}"], 4)
                         for name, values in final.evaluation.metrics.items()}
    finally:
        monitor.close()
    return {"n": n, "stages": monitor.stages, **facts}


def child(n: int, encoder: str, trials: int, out: Path) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="recsys-scale-") as home:
        result = run_size(n, encoder, trials, Path(home), out)
    out.write_text(json.dumps(result))


def slope(sizes: list[int], values: list[float]) -> float | None:
    """Least-squares slope of log(value) on log(size); None with fewer than two points."""
    points = [(math.log(s), math.log(max(v, 1e-3))) for s, v in zip(sizes, values, strict=True)]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def print_tables(results: list[dict], encoder: str, trials: int) -> None:
    cpu = psutil.cpu_count()
    mem = psutil.virtual_memory().total / 2**30
    print(f"# Scale benchmark\n\nMachine: {platform.processor() or platform.machine()}, "
          f"{cpu} CPUs, {mem:.0f} GiB RAM, Python {platform.python_version()}; "
          f"encoder `{encoder}`; fusion trials {trials}.\n")
    for r in results:
        total = sum(s["seconds"] for s in r["stages"].values())
        peak = max(s["rss_gib"] for s in r["stages"].values())
        print(f"## {r['n']:,} interactions requested: {r.get('interactions', 0):,} rows, "
              f"{r.get('users', 0):,} users, {r.get('items', 0):,} items\n")
        if r.get("error"):
            print(f"Failed: `{r['error']}`\n")
        print("| stage | seconds | peak RSS GiB |\n|---|---:|---:|")
        for name, s in r["stages"].items():
            print(f"| {name} | {s['seconds']:.1f} | {s['rss_gib']:.2f} |")
        print(f"| **total** | **{total:.1f}** | **{peak:.2f}** |\n")
        if r.get("plan"):
            print(f"Size plan: `{json.dumps(r['plan'])}`; skipped sources: "
                  f"`{r.get('skipped', [])}`\n")
        if r.get("ndcg"):
            print(f"Test NDCG@10: `{json.dumps(r['ndcg'])}`\n")
    complete = [r for r in results if not r.get("error")]
    if len(complete) < 2:
        return
    sizes = [r["n"] for r in complete]
    print("## Growth exponents (log-log slope over "
          f"{', '.join(f'{s:,}' for s in sizes)})\n")
    print("| stage | time exponent | RSS exponent |\n|---|---:|---:|")
    for name in complete[-1]["stages"]:
        if all(name in r["stages"] for r in complete):
            t = slope(sizes, [r["stages"][name]["seconds"] for r in complete])
            m = slope(sizes, [r["stages"][name]["rss_gib"] for r in complete])
            print(f"| {name} | {t:.2f} | {m:.2f} |")
    totals = [sum(s["seconds"] for s in r["stages"].values()) for r in complete]
    print(f"| **total** | **{slope(sizes, totals):.2f}** | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--trials", type=int, default=30, help="fusion tuner trials")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--timeout", type=float, help="seconds per size before it is stopped "
                        "(the stages done by then are reported)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        child(args.one, args.encoder, args.trials, args.out)
        return
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"size {n:,}", file=sys.stderr, flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--one", str(n), "--encoder", args.encoder,
                       "--trials", str(args.trials), "--out", out.name]
            try:
                status = subprocess.run(command, cwd=ROOT, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                status = f"killed after the {args.timeout}s time limit"
            text = Path(out.name).read_text()
        result = json.loads(text) if text else {"n": n, "stages": {}}
        if status:
            result["error"] = status if isinstance(status, str) else f"exit status {status}"
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_tables(results, args.encoder, args.trials)


if __name__ == "__main__":
    main()
