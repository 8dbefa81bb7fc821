"""How the user encoder should stop: its holdout curve beside the validation curve.

The user encoder early-stops on a holdout carved from its own training data (one latest item
for each of up to 2,000 users). This bench trains it on the first validation carve's fit
part for a fixed number of epochs, records after every epoch the holdout NDCG@10 that early
stopping reads and the validation NDCG@10 of both readouts (``user_encoder``: the latest
state; ``user_history``: the mean state) on that carve's validation part, scored by the
product's evaluator. It then replays stopping rules (patience, smoothing) on the recorded
holdout values with the product's ``EarlyStopping`` and prints, for each, where it stops,
which epoch it keeps and what that epoch scores on validation. The test part is never read.

    python bench/early_stopping.py --dataset ml-latest-small --protocol leave_last
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import encoder_run  # noqa: E402
from recsys_core.deep import user_encoder  # noqa: E402
from recsys_core.deep.holdout import EarlyStopping, Holdout, ordered_sequences  # noqa: E402
from recsys_core.deep.user_encoder import UserEncoder, UserEncoderConfig, encode  # noqa: E402
from recsys_core.deep.user_history import UserHistory, UserHistoryConfig  # noqa: E402
from recsys_core.evaluation.evaluator import evaluate  # noqa: E402
from recsys_core.scoring import TrainOptions  # noqa: E402

RULES = ((5, 1), (10, 1), (5, 3), (10, 3))
"""(patience, smoothing) pairs replayed on the recorded holdout."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    encoder_run.add_arguments(parser, "early_stopping")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    store, embeddings = encoder_run.prepare(args)
    fit, valid = store.carves()[0]
    fit_data, valid_data = store.data(fit, embeddings), store.data(valid)
    options = TrainOptions(seed=args.seed)
    # Scorers to load each epoch's vectors into (trained once for one epoch, so the
    # evaluator accepts them), and the sequences both readouts read.
    config = UserEncoderConfig(epochs=1, early_stopping="none")
    last = UserEncoder(config).train(fit_data, options)
    history = UserHistory(UserHistoryConfig(encoder=config), encoder=last).train(fit_data, options)
    sequences = ordered_sequences(fit_data, torch.Generator().manual_seed(args.seed))
    rows: list[tuple[float, float, float]] = []
    check = user_encoder._Trainer._holdout_ndcg

    def recorded(trainer: user_encoder._Trainer, holdout: Holdout) -> float:
        value = check(trainer, holdout)
        trainer.net.eval()
        with torch.no_grad():
            items = trainer.item_table()
            for scorer, recency in ((last, 0.0), (history, math.inf)):
                scorer.item_vectors = items.numpy()
                scorer.user_vectors = encode(trainer.net, items, sequences,
                                             trainer.c.max_len, recency).numpy()
        trainer.net.train()
        metrics = evaluate({"last": last, "history": history}, fit_data, valid_data,
                           k=10).metrics
        rows.append((value, metrics["last"]["ndcg@10"], metrics["history"]["ndcg@10"]))
        print(f"| {len(rows)} | {value:.4f} | {rows[-1][1]:.4f} | {rows[-1][2]:.4f} |",
              flush=True)
        return value

    user_encoder._Trainer._holdout_ndcg = recorded  # type: ignore[method-assign]
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch threads "
          f"{args.threads}; {args.dataset} / {args.protocol}, seed {args.seed}; trained on "
          f"{fit} ({fit_data.matrix.nnz} interactions), scored on {valid}\n\n"
          "| epoch | holdout NDCG@10 | validation NDCG@10, user_encoder | user_history |\n"
          "|---:|---:|---:|---:|", flush=True)
    start = time.perf_counter()
    UserEncoder(UserEncoderConfig(epochs=args.epochs, patience=args.epochs)
                ).train(fit_data, options)
    print(f"\n{args.epochs} epochs in {time.perf_counter() - start:.0f}s (with the validation "
          "scoring)\n\n| patience | smoothing | stops after | keeps epoch | validation "
          "user_encoder | user_history |\n|---:|---:|---:|---:|---:|---:|")
    for patience, smoothing in RULES:
        stopper = EarlyStopping(torch.nn.Linear(1, 1), patience, smoothing)
        stopped = next((n for n, row in enumerate(rows, start=1) if stopper.step(row[0])),
                       len(rows))
        kept = rows[stopper.best_check - 1]
        print(f"| {patience} | {smoothing} | {stopped} | {stopper.best_check} | "
              f"{kept[1]:.4f} | {kept[2]:.4f} |")
    best = int(np.argmax([row[1] for row in rows]))
    print(f"\nbest validation epoch (user_encoder): {best + 1} ({rows[best][1]:.4f})")


if __name__ == "__main__":
    main()
