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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quality import DATASETS, PROTOCOLS, table, verdict  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.config import Settings  # noqa: E402
from recsys_core.runstore import RunStore  # noqa: E402
from recsys_core.training import BASELINES, TrainingConfig  # noqa: E402


def retune(store: RunStore, settings: Settings, trials: int, seed: int) -> dict:
    """Tune the fusion on ``store``'s carve sources and evaluate with its refit sources."""
    fused = [n for n in TrainingConfig().fused_sources
             if all(store.scorer_path(part, n).exists() for part in ("fit", "train"))]
    carve_paths = [{n: store.scorer_path(fit, n) for n in fused} for fit, _ in store.carves()]
    tuned = pipeline.tune_fusion(store, carve_paths, 10, trials, seed)
    baselines = {n: store.scorer_path("train", n) for n in BASELINES
                 if store.scorer_path("train", n).exists()}
    _, embeddings = pipeline.embed_items(store, settings, settings.encoder)  # from the cache
    final = pipeline.evaluate_run(store, {n: store.scorer_path("train", n) for n in fused},
                                  baselines, tuned.config, 10, embeddings=embeddings)
    return {"product": final.evaluation, "peers": None, "tuning": tuned, "params": {},
            "epochs": {}}


def finished_runs(settings: Settings, protocol: str, seed: int) -> list[RunStore]:
    """The bench home's runs of ``protocol`` and ``seed`` whose product part finished."""
    return [run for run in RunStore.under(settings.runs_dir)
            if run.meta.get("protocol") == protocol and run.meta.get("seed") == seed
            and run.scorer_path("train", "mostpop").exists()]  # the baseline is trained last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(Path(__file__).parent / "results" / "home"),
                        help="the bench/quality.py state folder")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--trials", type=int, default=40, help="fusion tuner trials")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    for name in args.datasets.split(","):
        settings = Settings(home=Path(args.home) / Path(name).name)
        for protocol in args.protocols.split(","):
            found = finished_runs(settings, protocol, args.seed)
            if not found:
                print(f"\n### {name} / {protocol}: no finished run under {args.home}")
                continue
            start = time.perf_counter()
            result = retune(found[0], settings, args.trials, args.seed)
            print(f"\n### {name} / {protocol} (retuned from {found[0]}, "
                  f"{time.perf_counter() - start:.0f}s)", flush=True)
            print("\n".join(table(result)))
            print("\n".join(line for line in verdict(result, protocol)
                            if not line.startswith("tuned source params")), flush=True)
            print("rows: " + json.dumps(found[0].meta["rows"]), flush=True)


if __name__ == "__main__":
    main()
