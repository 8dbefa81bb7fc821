"""User-encoder settings compared on the validation carves, never on test.

Each variant (config fields over the defaults) is trained on every validation carve's fit
part, as the flow trains its sources, and every readout of the trained network (the latest
state, ``user_encoder``'s default; each half-life the fusion tuner chooses from; the mean
state, ``user_history``) is scored by the product's evaluator (all items ranked, seen items
excluded) on that carve's validation part.
A default is changed only when a variant wins here: the test part of the run is never read.

    python bench/user_encoder_settings.py --dataset ml-latest-small --protocol stratified \\
        --variants '{}' '{"dropout": 0.5}'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import encoder_run  # noqa: E402
from recsys_core.deep.user_encoder import (  # noqa: E402
    RECENCIES,
    UserEncoder,
    UserEncoderConfig,
)
from recsys_core.scoring import TrainOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    encoder_run.add_arguments(parser, "ue")
    parser.add_argument("--variants", nargs="+", default=["{}"],
                        help="JSON objects of UserEncoderConfig fields")
    args = parser.parse_args()
    store, embeddings = encoder_run.prepare(args)
    carves = [(store.data(fit, embeddings), store.data(valid)) for fit, valid in store.carves()]
    names = ["latest", *(f"half-life {r:g}" for r in RECENCIES if r), "mean"]
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch threads "
          f"{args.threads}; {args.dataset} / {args.protocol}, seed {args.seed}, "
          f"{len(carves)} carves; validation NDCG@10 of each readout, per carve -> mean\n\n"
          f"| variant | seconds | {' | '.join(names)} |\n|---|---:|"
          + "---:|" * len(names), flush=True)
    for variant in args.variants:
        config = UserEncoderConfig(**json.loads(variant))
        start, values = time.perf_counter(), []
        for fit, valid in carves:
            options = TrainOptions(seed=args.seed)
            encoder = UserEncoder(config).train(fit, options)
            values.append(encoder_run.readouts_ndcg(encoder, fit, valid, options))
        seconds = time.perf_counter() - start
        cells = [", ".join(f"{v[name]:.4f}" for v in values)
                 + f" -> {sum(v[name] for v in values) / len(values):.4f}" for name in names]
        print(f"| {variant} | {seconds:.1f} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
