"""How a deep source's refit on ``train`` should stop: its seconds against its NDCG@10.

The flow refits every source on the whole training part, the user encoder and the graph
warm-started from their models of the first validation carve's fit part
(``pipeline.train_source``), and stops them on a holdout of the refit's own data. This bench
plays that one level down, so that the test part is never read: the first carve's fit part
stands for ``train`` and its validation part for ``test``; a carve of that fit part
(``validation_split``, the flow's own carving) stands for the carve. The carve model is
trained once and refitted under several stopping rules, each scored by the product's
evaluator (all items ranked; the user encoder in every readout: the latest state, the
half-lives the fusion tuner chooses from, the mean state of ``user_history``), so a shorter
refit schedule is judged by what it costs the model, not only by the time it saves.

    python bench/refit.py --dataset ml-latest-small --protocol leave_last
    python bench/refit.py --dataset lastfm-2k --protocol stratified --source graph
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import encoder_run  # noqa: E402
from recsys_core.deep.graph import LMGraph, LMGraphConfig  # noqa: E402
from recsys_core.deep.user_encoder import RECENCIES, UserEncoder, UserEncoderConfig  # noqa: E402
from recsys_core.evaluation.evaluator import evaluate  # noqa: E402
from recsys_core.evaluation.splits import validation_split  # noqa: E402
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions  # noqa: E402

VARIANTS: dict[str, tuple[bool, dict[str, Any]]] = {
    "warm, patience 2, at most the carve model's best epoch count (the flow's)": (True, {}),
    "warm, patience 5, the same cap": (True, {"refit_patience": 5}),
    "warm, patience 5 alone": (True, {"refit_patience": 5, "refit_epochs": "patience"}),
    "warm, patience 1": (True, {"refit_patience": 1}),
    "warm, 3 fixed epochs": (True, {"early_stopping": "none", "epochs": 3}),
    "from scratch, patience 5": (False, {}),
}
"""Refit variant -> (start from the carve model, config fields over the defaults)."""
GRAPH_VARIANTS = {name: variant for name, variant in VARIANTS.items()
                  if set(variant[1]) <= set(LMGraphConfig.model_fields)}
"""The variants ``--source graph`` runs: those that set no user-encoder-only field."""
READOUTS = ["latest", *(f"half-life {r:g}" for r in RECENCIES if r), "mean"]
"""The user encoder's columns: ``encoder_run.readouts_ndcg``'s names, in its order."""
SOURCES: dict[str, tuple[Callable[[Any], Scorer], type[ScorerConfig],
                         dict[str, tuple[bool, dict[str, Any]]], list[str]]] = {
    "user_encoder": (UserEncoder, UserEncoderConfig, VARIANTS, READOUTS),
    "graph": (LMGraph, LMGraphConfig, GRAPH_VARIANTS, ["ndcg@10"]),
}
"""Source -> (its class, its config's class, its refit variants, the table's columns)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    encoder_run.add_arguments(parser, "refit")
    parser.add_argument("--source", choices=list(SOURCES), default="user_encoder")
    parser.add_argument("--variants", default=None,
                        help="comma-separated indices into the source's variants (all when "
                        "absent); user_encoder: " + "; ".join(VARIANTS) + "; graph: "
                        + "; ".join(GRAPH_VARIANTS))
    args = parser.parse_args()
    kind, config, variants, columns = SOURCES[args.source]
    logging.getLogger("recsys_core.deep.graph").setLevel(logging.INFO)
    store, embeddings = encoder_run.prepare(args)
    options = TrainOptions(seed=args.seed)
    fit, valid = store.carves()[0]
    train, test = store.data(fit, embeddings), store.data(valid)
    inner = validation_split(store.frame(fit), args.protocol, args.seed).train
    start = time.perf_counter()
    carve = kind(config()).train(store.frame_data(inner, embeddings), options)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch threads "
          f"{args.threads}; {args.dataset} / {args.protocol}, seed {args.seed}; "
          f"{args.source}: carve of the carve {time.perf_counter() - start:.1f}s; refit on "
          f"{fit} ({train.matrix.nnz} interactions), scored on {valid}; validation NDCG@10\n\n"
          f"| refit | seconds | {' | '.join(columns)} |\n|---|---:|" + "---:|" * len(columns),
          flush=True)
    names = list(variants)
    chosen = args.variants.split(",") if args.variants else range(len(names))
    for name in (names[int(i)] for i in chosen):
        warm, fields = variants[name]
        refit = kind(config(**fields))
        if warm:
            refit.warm_start(carve)
        start = time.perf_counter()
        refit.train(train, options)
        seconds = time.perf_counter() - start
        if isinstance(refit, UserEncoder):
            values = list(encoder_run.readouts_ndcg(refit, train, test, options).values())
        else:
            values = [evaluate({args.source: refit}, train, test, k=10).metrics[args.source][
                "ndcg@10"]]
        print(f"| {name} | {seconds:.1f} | " + " | ".join(f"{v:.4f}" for v in values) + " |",
              flush=True)


if __name__ == "__main__":
    main()
