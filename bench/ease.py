"""EASE's two exact forms: the items x items inverse against the users x users one.

``recsys_core.cf.ease.ease_weights`` solves over users when there are at most half as many
users as items (``form="auto"``). For each dataset's training part (the flow's split) and
each penalty, this times both forms on one thread (median of ``--repeats``, alternating),
prints the largest difference between their weights, and which form ``auto`` takes.

    python bench/ease.py --datasets ml-latest-small,lastfm-2k,amazon-scientific
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quality import DATA  # noqa: E402
from bench.timing import medians  # noqa: E402
from recsys_core import pipeline  # noqa: E402
from recsys_core.cf.ease import auto_form, ease_weights  # noqa: E402
from recsys_core.cf.warm import warm_items  # noqa: E402
from recsys_core.config import Settings  # noqa: E402
from recsys_core.data.loaders import read_dataset  # noqa: E402
from recsys_core.training import TrainingConfig  # noqa: E402
from recsys_core.warehouse.store import Warehouse  # noqa: E402


def training_matrix(dataset: str, protocol: str, seed: int, home: Path) -> sp.csr_matrix:
    """The flow's training part of ``dataset``, its warm items only (as ``EASE`` fits it)."""
    settings = Settings(home=home / dataset)
    settings.ensure_dirs()
    snapshot = Warehouse(settings.warehouse_path).load(read_dataset(str(DATA / dataset)))
    store = pipeline.prepare_run(settings, snapshot, protocol, seed, TrainingConfig().carves)
    matrix = store.data("train").matrix
    return sp.csr_matrix(matrix[:, warm_items(matrix)], dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-latest-small,lastfm-2k")
    parser.add_argument("--protocol", default="stratified")
    parser.add_argument("--l2", default="100,500", help="comma-separated penalties")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores; "
          f"one BLAS thread; {args.protocol} training part, seed {args.seed}; median of "
          f"{args.repeats}\n\n| dataset | users | items | interactions | l2 | items form s | "
          "users form s | items/users | max abs diff | auto |\n|---|---:|---:|---:|---:|---:|"
          "---:|---:|---:|---|", flush=True)
    with tempfile.TemporaryDirectory() as home, threadpool_limits(1):
        for dataset in args.datasets.split(","):
            matrix = training_matrix(dataset, args.protocol, args.seed, Path(home))
            n_users, n_items = matrix.shape
            auto = auto_form(n_users, n_items)
            for l2 in (float(v) for v in args.l2.split(",")):
                diff = np.abs(ease_weights(matrix, l2, "items")
                              - ease_weights(matrix, l2, "users")).max()
                times = medians({form: functools.partial(ease_weights, matrix, l2, form)
                                 for form in ("items", "users")}, args.repeats)
                print(f"| {dataset} | {n_users} | {n_items} | {matrix.nnz} | {l2:g} | "
                      f"{times['items']:.2f} | {times['users']:.2f} | "
                      f"{times['items'] / times['users']:.1f} | {diff:.1e} | {auto} |",
                      flush=True)


if __name__ == "__main__":
    main()
