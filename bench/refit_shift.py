"""What the refit on ``train`` adds to each source, and to the fusion, on a run's test part.

For a finished bench/quality.py run, the fusion weights are tuned on its carves again (as the
flow tuned them, seeded: the same weights) and applied to the run's own pickles twice: with
the sources trained on each validation carve's fit part, and with the refit sources trained
on ``train`` (what the product ships). Both are scored by the product's evaluator on the
run's test part, beside each source alone. Nothing is trained, and the test part chooses
nothing: it shows which sources gain from the refit's extra interactions and which do not,
which decides whether weights tuned on the carves still hold after the refit.

A third row per carve splits a source's refit gain in two: the carve's models score each
user from their whole ``train`` history by fold-in (the items the refit reads for them),
without the refit's retraining. The step from the carve's row to it is what reading more of
a user's history adds; the step from it to the refit's row is what a model trained on more
interactions adds. A source that cannot fold in scores 0 there.

    python bench/refit_shift.py --home bench/results/home --datasets ml-latest-small \\
        --protocols stratified
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.retune import add_run_arguments, carve_paths, finished_runs, fused_names  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.data.interactions import InteractionData  # noqa: E402
from recsys_core.evaluation.evaluator import evaluate  # noqa: E402
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion  # noqa: E402
from recsys_core.runstore import RunStore  # noqa: E402
from recsys_core.scoring import History, Scorer  # noqa: E402


def shift(store: RunStore, config: FusionConfig, k: int = 10) -> list[str]:
    """Table rows: test NDCG@k of the fusion and each source, per part the sources saw."""
    names = list(config.weights)
    train, test = store.data("train"), store.data("test")
    sequences, weights = _histories(train)
    history = History.of(sequences, train.n_items, weights)
    rows = []
    for part in [fit for fit, _ in store.carves()] + ["train"]:
        sources = pipeline.load_sources({n: store.scorer_path(part, n) for n in names})
        fused = WeightedFusion(config, sources).train(store.data(part))
        read = {part: fused}
        if part != "train":  # the same models (readouts applied), reading train's histories
            folded = {n: _folding_in(source, history) for n, source in fused.sources.items()}
            read[f"{part}, train history (fold-in)"] = WeightedFusion(config, folded).train(
                store.data(part))
        for label, model in read.items():
            metrics = evaluate({"fused": model, **model.sources}, train, test, k=k).metrics
            values = [metrics[n][f"ndcg@{k}"] for n in ["fused", *names]]
            best = max(values[1:])
            rows.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in values)
                        + f" | {values[0] / best - 1:+.1%} |")
    return rows


def _histories(data: InteractionData) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every user's items oldest first and their interaction weights, in the same order."""
    matrix = data.matrix
    sequences, weights = [], []
    for user in range(data.n_users):
        start, end = matrix.indptr[user], matrix.indptr[user + 1]
        order = (np.arange(end - start) if data.times is None
                 else np.argsort(data.times.data[start:end], kind="stable"))
        sequences.append(matrix.indices[start:end][order])
        weights.append(np.asarray(matrix.data[start:end], dtype=np.float32)[order])
    return sequences, weights


def _folding_in(source: Scorer, history: History) -> Scorer:
    """A copy of ``source`` that scores user row ``u`` by folding in ``history``'s row ``u``."""
    clone = copy.copy(source)

    def score(user_index: np.ndarray) -> np.ndarray:
        rows = History([history.sequences[u] for u in user_index],
                       [history.weights[u] for u in user_index], history.matrix[user_index])
        return source.fold_in_indices(rows)

    clone._score = score  # type: ignore[method-assign]
    return clone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    args = parser.parse_args()
    for heading, _, store in finished_runs(args):
        paths = carve_paths(store, fused_names(store))
        config = pipeline.tune_fusion(store, paths, 10, args.trials, args.seed).config
        weights = {n: round(w, 3) for n, w in config.weights.items()}
        print(f"\n### {heading} ({store}): test NDCG@10 with the weights tuned on the carves "
              f"({weights}, readouts {config.readouts}), the sources trained on each part\n\n"
              "| sources trained on | fused | " + " | ".join(config.weights)
              + " | fused vs best |\n|---|" + "---:|" * (len(config.weights) + 2), flush=True)
        print("\n".join(shift(store, config)), flush=True)


if __name__ == "__main__":
    main()
