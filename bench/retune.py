"""Fusion tuning again on a finished bench/quality.py run's sources, then the product's table.

A run folder keeps every source it trained (``RunStore.scorer_path``: on each validation
carve's fit part and in the refit on ``train``). A change to the fusion tuner alone is measured
here by tuning on those carve sources again and evaluating the refit sources, fused with the
new weights, on the run's test part, without training anything: the same numbers a fresh
bench/quality.py run gives, whose sources are seeded. Peers are not rerun; their rows are in
the bench/quality.py output of the same run folder (same split, same evaluator).

    python bench/retune.py --home bench/results/home --datasets ml-latest-small \\
        --protocols stratified
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quality import DATASETS, PROTOCOLS, table, verdict  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.config import Settings  # noqa: E402
from recsys_core.runstore import RunStore  # noqa: E402
from recsys_core.training import BASELINES, TrainingConfig  # noqa: E402


def fused_names(store: RunStore) -> list[str]:
    """The train flow's fused sources that ``store`` trained, on the carves and in the refit."""
    return [n for n in TrainingConfig().fused_sources
            if all(store.scorer_path(part, n).exists() for part in ("fit", "train"))]


def carve_paths(store: RunStore, names: list[str]) -> list[dict[str, Path]]:
    """Per carve, the pickles of sources ``names`` trained on its fit part."""
    return [{n: store.scorer_path(fit, n) for n in names} for fit, _ in store.carves()]


def retune(store: RunStore, settings: Settings, trials: int, seed: int) -> dict:
    """Tune the fusion on ``store``'s carve sources and evaluate with its refit sources."""
    fused = fused_names(store)
    tuned = pipeline.tune_fusion(store, carve_paths(store, fused), 10, trials, seed)
    baselines = {n: store.scorer_path("train", n) for n in BASELINES
                 if store.scorer_path("train", n).exists()}
    _, embeddings = pipeline.embed_items(store, settings, settings.encoder)  # from the cache
    final = pipeline.evaluate_run(store, {n: store.scorer_path("train", n) for n in fused},
                                  baselines, tuned.config, 10, embeddings=embeddings)
    return {"product": final.evaluation, "peers": None, "tuning": tuned, "params": {},
            "epochs": {}}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the benches that read finished bench/quality.py runs."""
    parser.add_argument("--home", default=str(Path(__file__).parent / "results" / "home"),
                        help="the bench/quality.py state folder")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--trials", type=int, default=40, help="fusion tuner trials")
    parser.add_argument("--seed", type=int, default=42)


def finished_runs(args: argparse.Namespace) -> Iterator[tuple[str, Settings, RunStore]]:
    """Per dataset and protocol asked for, ``(heading, settings, run)`` of the home's run of
    that seed whose product part finished; says so where there is none."""
    for name in args.datasets.split(","):
        settings = Settings(home=Path(args.home) / Path(name).name)
        runs = RunStore.under(settings.runs_dir)
        for protocol in args.protocols.split(","):
            found = [r for r in runs if r.meta.get("protocol") == protocol
                     and r.meta.get("seed") == args.seed  # the baseline is trained last:
                     and r.scorer_path("train", "mostpop").exists()]  # the product's part ran
            if not found:
                print(f"\n### {name} / {protocol}: no finished run under {args.home}")
                continue
            yield f"{name} / {protocol}", settings, found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    args = parser.parse_args()
    for heading, settings, store in finished_runs(args):
        start = time.perf_counter()
        result = retune(store, settings, args.trials, args.seed)
        print(f"\n### {heading} (retuned from {store}, "
              f"{time.perf_counter() - start:.0f}s)", flush=True)
        print("\n".join(table(result)))
        print("\n".join(line for line in verdict(result, store.meta["protocol"])
                        if not line.startswith("tuned source params")), flush=True)
        print("rows: " + json.dumps(store.meta["rows"]), flush=True)


if __name__ == "__main__":
    main()
