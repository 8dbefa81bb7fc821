"""User-encoder settings compared on the validation carves, never on test.

Each variant (config fields over the defaults) is trained on every validation carve's fit
part, as the flow trains its sources, and scored by the product's evaluator (all items
ranked, seen items excluded) on that carve's validation part. A default is changed only when
a variant wins here: the test part of the run is never read.

    python bench/user_encoder_settings.py --dataset ml-latest-small --protocol stratified \\
        --variants '{}' '{"dropout": 0.5}'
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.quality import DATA  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.config import Settings  # noqa: E402
from recsys_core.data.loaders import read_dataset  # noqa: E402
from recsys_core.deep.user_encoder import UserEncoder, UserEncoderConfig  # noqa: E402
from recsys_core.evaluation.evaluator import evaluate  # noqa: E402
from recsys_core.scoring import TrainOptions  # noqa: E402
from recsys_core.training import TrainingConfig  # noqa: E402
from recsys_core.warehouse.store import Warehouse  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--protocol", default="stratified")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["{}"],
                        help="JSON objects of UserEncoderConfig fields")
    parser.add_argument("--home", default=str(Path(__file__).parent / "results" / "ue"),
                        help="state folder (its warehouse caches the item embeddings)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("recsys_core.deep.user_encoder").setLevel(logging.INFO)  # its epochs
    settings = Settings(home=Path(args.home) / f"{args.dataset}-{args.protocol}")
    settings.ensure_dirs()
    snapshot = Warehouse(settings.warehouse_path).load(read_dataset(str(DATA / args.dataset)))
    store = pipeline.prepare_run(settings, snapshot, args.protocol, args.seed,
                                 TrainingConfig().carves)
    _, embeddings = pipeline.embed_items(store, settings, settings.encoder)
    carves = [(store.data(fit, embeddings), store.data(valid)) for fit, valid in store.carves()]
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch threads "
          f"{args.threads}; {args.dataset} / {args.protocol}, seed {args.seed}, "
          f"{len(carves)} carves\n\n| variant | seconds | validation NDCG@10 per carve | mean |"
          "\n|---|---:|---:|---:|", flush=True)
    for variant in args.variants:
        config = UserEncoderConfig(**json.loads(variant))
        start, values = time.perf_counter(), []
        for fit, valid in carves:
            model = UserEncoder(config).train(fit, TrainOptions(seed=args.seed))
            values.append(evaluate({"ue": model}, fit, valid, k=10).metrics["ue"]["ndcg@10"])
        print(f"| {variant} | {time.perf_counter() - start:.1f} | "
              f"{', '.join(f'{v:.4f}' for v in values)} | {sum(values) / len(values):.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
