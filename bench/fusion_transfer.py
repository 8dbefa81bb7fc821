"""How far the fusion's validation gain carries: weights tuned on one carve, scored on another.

For a finished bench/quality.py run, the product's tuner (``fusion.tuner.tune``) fits the
weights on one validation carve's sources alone, and the product's evaluator scores them on
every other carve's validation part beside each source alone there (sources read with the
readouts the tuner chose). Nothing is trained: the carves' sources are the run's pickles
(``RunStore.scorer_path``), and the test part is never read. A gain that holds on the other
carves is not the tuner's selection bias on its own carve; what a run's test gain
(bench/quality.py) lacks beside it was lost between the carves and the refit on ``train``.

    python bench/fusion_transfer.py --home bench/results/home --datasets ml-latest-small \\
        --protocols stratified
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.retune import add_run_arguments, carve_paths, finished_runs, fused_names  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.evaluation.evaluator import evaluate  # noqa: E402
from recsys_core.fusion.tuner import tune  # noqa: E402
from recsys_core.fusion.weighted import WeightedFusion  # noqa: E402
from recsys_core.runstore import RunStore  # noqa: E402


def transfer(store: RunStore, trials: int, seed: int, k: int = 10) -> list[str]:
    """Table rows: per carve tuned on, its own gain and its gain on each other carve."""
    parts = store.carves()
    carves = pipeline.load_carves(store, carve_paths(store, fused_names(store)))
    rows = []
    for a, tuned_on in enumerate(carves):
        result = tune([tuned_on], k=k, trials=trials, seed=seed)
        best_own = max(result.single.values())
        cells = [f"{parts[a][0]} | {result.ndcg:.4f} ({result.ndcg / best_own - 1:+.1%})"]
        for b, other in enumerate(carves):
            if b == a:
                continue
            fused = WeightedFusion(result.config, other.fusion.sources).train(other.fit)
            singles = fused.sources  # read with the tuned readouts
            metrics = evaluate({"fused": fused, **singles}, other.fit, other.validation,
                               k=k).metrics
            best = max(singles, key=lambda n: metrics[n][f"ndcg@{k}"])
            value, base = metrics["fused"][f"ndcg@{k}"], metrics[best][f"ndcg@{k}"]
            cells.append(f"{parts[b][0]}: {value:.4f} against {best} {base:.4f} "
                         f"({value / base - 1:+.1%})")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    args = parser.parse_args()
    for heading, _, store in finished_runs(args):
        print(f"\n### {heading} ({store}): validation NDCG@10 of the fusion tuned on one "
              "carve's sources\n\n| tuned on | there (vs its best single source) | on the "
              "other carve (vs its best single source there) |\n|---|---:|---:|", flush=True)
        print("\n".join(transfer(store, args.trials, args.seed)), flush=True)


if __name__ == "__main__":
    main()
