"""How far any weighting of a run's refit sources could take the fusion, on its test part.

For a finished bench/quality.py run, the product's weights are tuned on its carves again (as
the flow tuned them, seeded: the same weights). Then the product's tuner is run on the refit
sources against half of the test users, with no noise bar, and the weights it finds are scored
on the other half; and the other way round, for a few seeded splits. That is a ceiling no
carve-tuned weighting can be expected to pass: weights chosen on the test part's own
interactions, from the same models. The spread between halves shows how much of a fused
gain is the test users' sampling noise. A last row tunes and scores on every test user
(in-sample: an upper bound that overfits). If the ceiling is below a target, the target
needs better sources, not a better tuner. Nothing is trained; the test part chooses nothing
that the product uses.

    python bench/fusion_ceiling.py --home bench/results/home --datasets ml-latest-small \\
        --protocols stratified
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from bench.retune import add_run_arguments, carve_paths, finished_runs, fused_names  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.data.interactions import InteractionData  # noqa: E402
from recsys_core.evaluation.evaluator import evaluate  # noqa: E402
from recsys_core.fusion.tuner import Carve, tune  # noqa: E402
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion  # noqa: E402
from recsys_core.runstore import RunStore  # noqa: E402


def halves(test: InteractionData, seed: int) -> tuple[InteractionData, InteractionData]:
    """The test part split by user into two seeded halves (same vocabularies)."""
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    first = np.zeros(test.n_users, dtype=bool)
    first[np.random.default_rng(seed).choice(users, len(users) // 2, replace=False)] = True
    parts = []
    for keep in (first, ~first):
        matrix = sp.csr_matrix(sp.diags(keep.astype(np.float32)) @ test.matrix)
        matrix.eliminate_zeros()  # the other half's users: no relevant items left
        parts.append(test.with_matrix(matrix))
    return parts[0], parts[1]


def ceiling(store: RunStore, trials: int, seed: int, splits: int, k: int = 10) -> list[str]:
    """Table rows: per half of the test users (``splits`` seeded splits in two), the product's
    fusion, the fusion tuned on the other half, and the best single source, by test NDCG@k;
    then their means, and the fusion tuned and scored on every test user (in-sample)."""
    names = fused_names(store)
    product = pipeline.tune_fusion(store, carve_paths(store, names), k, trials, seed).config
    train, test = store.data("train"), store.data("test")
    sources = pipeline.load_sources({n: store.scorer_path("train", n) for n in names})
    start = WeightedFusion(FusionConfig(weights=dict.fromkeys(names, 1.0)), sources).train(train)
    shipped = WeightedFusion(product, sources).train(train)
    rows, gains = [], []
    cases = [(a, b, f"split {i + 1}, {label} half")
             for i in range(splits) for a, b, label in _crossed(halves(test, seed + i))]
    for tuned_on, scored_on, label in [*cases, (test, test, "every user, in-sample")]:
        other = tune([Carve(start, train, tuned_on)], k, trials, seed, min_gain_se=0.0).config
        models = {"product": shipped, "ceiling": WeightedFusion(other, sources).train(train),
                  **sources}
        metrics = evaluate(models, train, scored_on, k=k).metrics
        value = {n: metrics[n][f"ndcg@{k}"] for n in models}
        best = max(names, key=value.__getitem__)
        gain = (value["product"] / value[best] - 1, value["ceiling"] / value[best] - 1)
        if tuned_on is not scored_on:
            gains.append(gain)
        weights = ", ".join(f"{n} {w:.2f}" for n, w in other.weights.items() if w)
        rows.append(f"| {label} | {value['product']:.4f} | {value['ceiling']:.4f} | "
                    f"{best} {value[best]:.4f} | {gain[0]:+.1%} | {gain[1]:+.1%} | {weights} |")
    mean, spread = np.mean(gains, axis=0), np.std(gains, axis=0)
    rows.insert(-1, f"| **mean of the {len(gains)} halves** (sd) | | | | **{mean[0]:+.1%}** "
                    f"({spread[0]:.1%}) | **{mean[1]:+.1%}** ({spread[1]:.1%}) | |")
    return rows


def _crossed(parts: tuple[InteractionData, InteractionData]
             ) -> list[tuple[InteractionData, InteractionData, str]]:
    """(tuned on, scored on, which half is scored) both ways round."""
    first, second = parts
    return [(first, second, "second"), (second, first, "first")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--splits", type=int, default=3,
                        help="seeded splits of the test users in two halves")
    args = parser.parse_args()
    for heading, _, store in finished_runs(args):
        print(f"\n### {heading} ({store}): test NDCG@10 on each half of the test users; "
              "the ceiling's weights were tuned on the other half\n\n| users | product fused "
              "(carve weights) | ceiling fused | best single source | product vs best | "
              "ceiling vs best | ceiling weights |\n|---|---:|---:|---|---:|---:|---|",
              flush=True)
        print("\n".join(ceiling(store, args.trials, args.seed, args.splits)), flush=True)


if __name__ == "__main__":
    main()
