"""The set-up the user-encoder benches share: one dataset's run, split and embedded as the
flow does it (the flow's carves, the default text encoder, the warehouse's embedding cache)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from bench.quality import DATA
from recsys_core import pipeline
from recsys_core.config import Settings
from recsys_core.data.interactions import InteractionData
from recsys_core.data.loaders import read_dataset
from recsys_core.deep.user_encoder import UserEncoder
from recsys_core.deep.user_history import UserHistory, UserHistoryConfig
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.runstore import RunStore
from recsys_core.scoring import Scorer, TrainOptions
from recsys_core.training import TrainingConfig
from recsys_core.warehouse.store import Warehouse


def add_arguments(parser: argparse.ArgumentParser, home: str) -> None:
    """The dataset, protocol, seed, threads and state-folder options.

    Args:
        parser: the bench's parser.
        home: name of the default state folder under bench/results.
    """
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--protocol", default="stratified")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--home", default=str(Path(__file__).parent / "results" / home),
                        help="state folder (its warehouse caches the item embeddings)")


def prepare(args: argparse.Namespace) -> tuple[RunStore, Path]:
    """The run's store and its item embeddings; logs the user encoder's epochs.

    Args:
        args: parsed options of ``add_arguments``.
    """
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("recsys_core.deep.user_encoder").setLevel(logging.INFO)
    settings = Settings(home=Path(args.home) / f"{args.dataset}-{args.protocol}")
    settings.ensure_dirs()
    snapshot = Warehouse(settings.warehouse_path).load(read_dataset(str(DATA / args.dataset)))
    store = pipeline.prepare_run(settings, snapshot, args.protocol, args.seed,
                                 TrainingConfig().carves)
    _, embeddings = pipeline.embed_items(store, settings, settings.encoder)
    return store, embeddings


def readouts_ndcg(encoder: UserEncoder, fit: InteractionData, valid: InteractionData,
                  options: TrainOptions) -> dict[str, float]:
    """NDCG@10 on ``valid`` of every readout of a trained encoder, by name.

    ``latest``: its latest state (the ``user_encoder`` row of a run that keeps it);
    ``half-life H``: each recency-weighted readout it offers (``UserEncoder.read``), from
    which the fusion tuner chooses on the carves; ``mean``: its plain mean state
    (``user_history``, which reads the same network).

    Args:
        encoder: trained on ``fit``.
        fit: the training data.
        valid: the data scored.
        options: run-time options.
    """
    models: dict[str, Scorer] = {
        f"half-life {readout:g}" if readout else "latest": encoder.read(readout)
        for readout in encoder.readouts()}
    models["mean"] = UserHistory(UserHistoryConfig(encoder=encoder.config),
                                 encoder=encoder).train(fit, options)
    metrics = evaluate(models, fit, valid, k=10).metrics
    return {name: metrics[name]["ndcg@10"] for name in models}
