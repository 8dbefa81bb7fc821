"""Recommendation quality: every source, the fusion and peers on public datasets.

For each dataset x protocol, one process runs the product's training path through the
``recsys_core.pipeline`` stage functions the train flow's tasks call (warehouse load,
features + split, cached embeddings, per-source hyperparameter tuning and fusion tuning on
each validation carve of the training part, the refit on the whole training part warm-started
from the first carve's fit, evaluation),
then trains the peers on the same training part and evaluates them with the same evaluator
(full ranking over all items, seen items excluded) on the same test part. One table per
dataset x protocol, plus the wall time of each stage.

Peers: EASE (recsys_core's, at its default lambda, untuned), cornac BiVAE (Microsoft
Recommenders' settings; ``--bivae-epochs`` lowers the 500 epochs where CPU time is short),
LightFM WARP with item features (title tokens + categories), and RecBole's SASRec (full-softmax
CE, ``recbole_sasrec``) and LightGCN (``recbole_lightgcn``) with RecBole's defaults, trained on
the run's ``fit`` part and early-stopped on its ``valid`` part (both carved from training)
with at most ``--sasrec-epochs`` / ``--lightgcn-epochs`` epochs, then scoring from the whole
training part (see bench/recbole_peers.py). Under ``cold_items`` every test item is cold,
which the ID-only peers (EASE, BiVAE, SASRec, LightGCN) cannot score (NaN, i.e. NDCG 0), so
only LightFM runs there, with identity features (``lightfm``) and without them
(``lightfm_features``); that protocol is reported twice, ranking all items and ranking only
the cold items (``cold_candidates``).

    python bench/quality.py                                   # everything (about an hour)
    python bench/quality.py --datasets ml-latest-small --protocols stratified --quick
    python bench/quality.py --datasets amazon-scientific --protocols given   # published split
    python bench/quality.py --datasets amazon-scientific --protocols leave_last --no-product \\
        --peers recbole_sasrec                                # a peer alone, same split

``--protocols given`` reproduces the split a dataset directory carries (a ``split`` column, or
RecBole / UniSRec ``<name>.train|valid|test.inter`` files); datasets without one are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

from bench.peers import BiVAEConfig, BiVAEPeer, LightFMConfig, LightFMPeer  # noqa: E402
from bench.recbole_peers import RecBoleConfig, RecBoleLightGCN, RecBoleSASRec  # noqa: E402
from recsys_core import pipeline, workers  # noqa: E402
from recsys_core.cf.ease import EASE  # noqa: E402
from recsys_core.config import Settings  # noqa: E402
from recsys_core.data import schema as S  # noqa: E402
from recsys_core.data.loaders import read_dataset  # noqa: E402
from recsys_core.evaluation.evaluator import Evaluation, evaluate  # noqa: E402
from recsys_core.fusion.tuner import TuningResult  # noqa: E402
from recsys_core.runstore import Part, RunStore  # noqa: E402
from recsys_core.scoring import TrainOptions  # noqa: E402
from recsys_core.training import BASELINES, TrainingConfig, train_side_by_side  # noqa: E402
from recsys_core.warehouse.store import Warehouse  # noqa: E402

DATA = Path("/work/shared/data")
DATASETS = ("ml-latest-small", "amazon-scientific", "lastfm-2k")
PROTOCOLS = ("stratified", "cold_items", "leave_last")
METRICS = ("ndcg", "precision", "recall", "map", "hit", "mrr", "coverage")
TIMINGS_LOCK = threading.Lock()
PEERS = ("peer_ease", "bivae", "lightfm", "lightfm_features", "recbole_sasrec",
         "recbole_lightgcn")


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    with TIMINGS_LOCK:  # the carves' threads add to the same sources' seconds
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def has_order(frame: pl.DataFrame) -> bool:
    return S.TS in frame.columns and frame[S.TS].null_count() < frame.height


def has_split(frame: pl.DataFrame) -> bool:
    return S.SPLIT in frame.columns and frame[S.SPLIT].null_count() < frame.height


def run_protocol(settings: Settings, snapshot: str, protocol: str, args: argparse.Namespace,
                 timings: dict[str, float]) -> dict:
    """The product's training path on one split, then the peers on the same split.

    With ``args.no_product`` only the peers run (``product`` is ``None``, no ``tuning``):
    the split depends on the snapshot, protocol and seed alone, so their rows sit beside a
    product run's of the same options.
    """
    config = TrainingConfig(protocol=protocol, seed=args.seed, trials=args.trials,
                            **({"sources": dict.fromkeys(args.sources.split(","), {})}
                               if args.sources else {}))
    options = TrainOptions(seed=args.seed)
    with timed(timings, "features+split"):
        store = pipeline.prepare_run(settings, snapshot, protocol, args.seed, config.carves)
    product = (None if args.no_product
               else run_product(store, settings, config, args, options, timings))
    peer_eval, epochs = run_peers(store, protocol, args, options, timings)
    return {**(product or {"product": None}),
            "peers": peer_eval, "rows": store.meta["rows"], "epochs": epochs}


def run_product(store: RunStore, settings: Settings, config: TrainingConfig,
                args: argparse.Namespace, options: TrainOptions,
                timings: dict[str, float]) -> dict:
    """The train flow's stages on ``store``'s split: tuned sources, carves, fusion, refit."""
    config = pipeline.size_plan(store, config, settings.large_run)
    with timed(timings, "embed"):
        _, emb = pipeline.embed_items(store, settings, settings.encoder)
    fused = config.fused_sources
    baselines = [name for name in config.sources if name in BASELINES]
    with timed(timings, "tune_sources"):
        params = pipeline.tune_sources(store, config.sources, options,
                                       trials=args.source_trials, k=10)
    tuned: list[TuningResult] = []

    def fuse() -> None:  # beside the refit, as the flow does
        with timed(timings, "tune_fusion"):
            tuned.append(pipeline.tune_fusion(store, carve_paths, 10, config.trials, args.seed))

    def train_all(names: list[str], parts: list[Part], beside: Callable[[], None] | None = None
                  ) -> list[dict[str, str]]:
        """As the flow does: independent trainings side by side, each in a worker process."""
        def train(part: Part, name: str) -> str:
            with timed(timings, f"{'train' if part == 'train' else 'fit'}_{name}"):
                return str(workers.call(pipeline.train_source, store, name, params[name], part,
                                        options, emb))

        return train_side_by_side(train, names, parts, settings.train_workers, beside)

    with workers.pool(settings.train_workers):
        with timed(timings, "fit (wall)"):
            carve_paths = train_all(fused, [fit for fit, _ in store.carves()[:config.carves]])
        with timed(timings, "train (wall)"):  # warm-started from the first carve's fit
            trained = train_all(fused + baselines, ["train"], fuse)[0]
    with timed(timings, "evaluate_product"):
        final = pipeline.evaluate_run(store, {name: trained[name] for name in fused},
                                      {name: trained[name] for name in baselines},
                                      tuned[0].config, 10, embeddings=emb)
    return {"product": final.evaluation, "tuning": tuned[0], "params": params}


def run_peers(store: RunStore, protocol: str, args: argparse.Namespace, options: TrainOptions,
              timings: dict[str, float]) -> tuple[Evaluation | None, dict]:
    """The peers trained on ``store``'s training part and scored on its test part.

    Returns:
        their evaluation (``None`` when none ran) and each RecBole peer's (epochs run, best
        epoch, cap).
    """
    train, test = store.data("train"), store.data("test")
    items = store.items()
    categories = (items["categories"].to_list() if "categories" in items.columns else None)
    categories = None if categories is None else [c or [] for c in categories]
    quick = args.quick
    # RecBole fits the first carve's fit part and early-stops on its valid part (train minus
    # valid = fit), as the product's deep sources do
    valid = store.data(store.carves()[0][1])
    peers = {"peer_ease": EASE(),
             "bivae": BiVAEPeer(BiVAEConfig(n_epochs=args.bivae_epochs)),
             "lightfm": LightFMPeer(LightFMConfig(epochs=10 if quick else 30), categories),
             "recbole_sasrec": RecBoleSASRec(RecBoleConfig(
                 epochs=args.sasrec_epochs, overrides=args.sasrec_overrides), valid),
             "recbole_lightgcn": RecBoleLightGCN(RecBoleConfig(
                 epochs=args.lightgcn_epochs, overrides=args.lightgcn_overrides), valid)}
    if protocol == "cold_items":  # every test item is cold: the ID-only peers score them NaN
        peers = {"lightfm": peers["lightfm"], "lightfm_features": LightFMPeer(
            LightFMConfig(epochs=10 if quick else 30, identity=False), categories)}
    if args.peers is not None:
        keep = set(filter(None, args.peers.split(",")))
        peers = {name: peer for name, peer in peers.items() if name in keep}
    for name, peer in list(peers.items()):
        with timed(timings, f"peer_{name}" if not name.startswith("peer") else name):
            try:
                peer.train(train, options)
            except Exception:  # a failing peer must not cost the product's table
                logging.getLogger("bench").exception("peer %s failed; left out", name)
                del peers[name]
    with timed(timings, "evaluate_peers"):
        peer_eval = (evaluate(peers, train, test, k=10,
                              cold_candidates=protocol == "cold_items") if peers else None)
    epochs = {name: (peer.epochs_run, peer.best_epoch, peer.config.epochs)
              for name, peer in peers.items() if name.startswith("recbole")}
    return peer_eval, epochs


def table(result: dict) -> list[str]:
    product, peers = result["product"], result["peers"]
    segments = ("cold_items", "long_tail", "cold_candidates")
    head = ["model", *(f"{m}@10" for m in METRICS), *(f"ndcg@10 {s}" for s in segments)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for evaluation in (e for e in (product, peers) if e is not None):
        for name in evaluation.models:
            row = evaluation.metrics[name]
            seg = evaluation.segments
            cells = [f"{row[f'{m}@10']:.4f}" for m in METRICS]
            for segment in segments:  # cold_candidates: only under cold_items
                value = seg[segment][name]["ndcg@10"] if segment in seg else np.nan
                cells.append("-" if np.isnan(value) else f"{value:.4f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def verdict(result: dict, protocol: str) -> list[str]:
    product, peers = result["product"], result["peers"]
    epochs = [f"{peer}: {run} epochs (cap {cap}), best epoch {best} (0-based)"
              for peer, (run, best, cap) in result["epochs"].items()]
    if product is None:  # peers alone
        return epochs
    both = {**product.metrics, **(peers.metrics if peers is not None else {})}
    ndcg = {n: v["ndcg@10"] for n, v in both.items()}
    fused = ndcg["fused"]
    single = {n: v for n, v in product.metrics.items() if n not in ("fused", *BASELINES)}
    best = max(single, key=lambda n: single[n]["ndcg@10"])
    out = [f"fused vs best single ({best}): {100 * (fused / ndcg[best] - 1):+.1f}%"]
    for peer in (p for p in PEERS if p in ndcg):
        out.append(f"fused vs {peer}: {100 * (fused / ndcg[peer] - 1):+.1f}%" if ndcg[peer] > 0
                   else f"fused vs {peer}: {peer} scores 0")
    if peers is not None and "cold_candidates" in peers.segments:
        cold = {n: v["ndcg@10"] for n, v in {**product.segments["cold_candidates"],
                                             **peers.segments["cold_candidates"]}.items()}
        for peer in (p for p in PEERS if p in cold):
            out.append(f"cold_candidates: fused vs {peer}: "
                       + (f"{100 * (cold['fused'] / cold[peer] - 1):+.1f}%" if cold[peer] > 0
                          else f"{peer} scores 0"))
    out += epochs
    weights = result["tuning"].config
    out.append(f"fusion: {weights.normaliser}/{weights.missing} weights "
               + json.dumps({n: round(w, 3) for n, w in weights.weights.items()})
               + f", readouts {json.dumps(weights.readouts)}")
    out.append("tuned source params: " + json.dumps(result["params"]))
    out.append(f"validation ndcg@10: fused {result['tuning'].ndcg:.4f} (per carve "
               + ", ".join(f"{v:.4f}" for v in result["tuning"].per_carve) + "), single "
               + json.dumps({n: round(v, 4) for n, v in result["tuning"].single.items()}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--quick", action="store_true",
                        help="fewer peer epochs and tuning trials (a smoke run)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bivae-epochs", type=int, default=None,
                        help="BiVAE epochs (default 500, the MS Recommenders setting; 50 quick)")
    for peer in ("sasrec", "lightgcn"):
        parser.add_argument(f"--{peer}-epochs", type=int, default=None,
                            help=f"most epochs of RecBole's {peer}, which early-stops on "
                            "validation (default 300, RecBole's own; 2 quick)")
        parser.add_argument(f"--{peer}-overrides", type=json.loads, default={},
                            help=f"JSON object of RecBole settings that replace its defaults "
                            f"for {peer} (none by default; the table's header prints them)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (1 when datasets run in parallel: torch's thread "
                        "pool crawls on an oversubscribed machine)")
    parser.add_argument("--sources", default=None,
                        help="comma-separated sources (default: the train flow's)")
    parser.add_argument("--trials", type=int, default=None, help="fusion tuner trials")
    parser.add_argument("--source-trials", type=int, default=None,
                        help="hyperparameter trials per source")
    parser.add_argument("--peers", default=None,
                        help="comma-separated peers to run (default: all of " + ",".join(PEERS)
                        + "; an empty string runs none)")
    parser.add_argument("--no-product", action="store_true",
                        help="peers only, on the split a product run with the same options "
                        "uses (for peers too slow to rerun beside it)")
    parser.add_argument("--home", default=str(Path(__file__).parent / "results" / "home"),
                        help="state folder; each dataset gets its own warehouse under it")
    args = parser.parse_args()
    args.trials = args.trials if args.trials is not None else (10 if args.quick else 40)
    args.bivae_epochs = args.bivae_epochs or (50 if args.quick else 500)
    args.sasrec_epochs = args.sasrec_epochs or (2 if args.quick else 300)
    args.lightgcn_epochs = args.lightgcn_epochs or (2 if args.quick else 300)
    args.source_trials = (args.source_trials if args.source_trials is not None
                          else (2 if args.quick else 6))
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("recsys_core").setLevel(logging.INFO)
    logging.getLogger("bench").setLevel(logging.INFO)  # the RecBole peers' epochs
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, cuda {torch.cuda.is_available()}; seed {args.seed}, "
          f"fusion trials {args.trials}, source trials {args.source_trials}, "
          f"BiVAE epochs {args.bivae_epochs}, RecBole epochs at most {args.sasrec_epochs} "
          f"(SASRec) / {args.lightgcn_epochs} (LightGCN), RecBole overrides "
          f"{json.dumps(args.sasrec_overrides)} (SASRec) / "
          f"{json.dumps(args.lightgcn_overrides)} (LightGCN), "
          f"quick {args.quick}", flush=True)
    for name in args.datasets.split(","):
        settings = Settings(home=Path(args.home) / Path(name).name)  # one warehouse each, so
        settings.ensure_dirs()  # datasets can run in parallel processes; embeddings cached
        timings: dict[str, float] = {}
        with timed(timings, "load"):
            dataset = read_dataset(str(DATA / name) if "/" not in name else name)
        with timed(timings, "warehouse"):
            snapshot = Warehouse(settings.warehouse_path).load(dataset)
        inter = dataset.interactions
        print(f"\n## {name}: {inter[S.USER_ID].n_unique()} users, "
              f"{dataset.items.height} items, {inter.height} interactions "
              f"(load {timings['load']:.1f}s, warehouse {timings['warehouse']:.1f}s)",
              flush=True)
        for protocol in args.protocols.split(","):
            if protocol == "leave_last" and not has_order(inter):
                print(f"\n### {name} / {protocol}: skipped (no interaction order)", flush=True)
                continue
            if protocol == "given" and not has_split(inter):
                print(f"\n### {name} / {protocol}: skipped (no split labels)", flush=True)
                continue
            stage: dict[str, float] = {}
            start = time.perf_counter()
            result = run_protocol(settings, snapshot, protocol, args, stage)
            total = time.perf_counter() - start
            scored = result["product"] or result["peers"]
            print(f"\n### {name} / {protocol} (rows {json.dumps(result['rows'])}, "
                  f"{scored.n_users['all'] if scored else 0} test users, {total:.0f}s)",
                  flush=True)
            print("\n".join(table(result)))
            print("\n".join(verdict(result, protocol)))
            print("stage seconds: " + json.dumps({k: round(v, 1) for k, v in stage.items()}),
                  flush=True)


if __name__ == "__main__":
    main()
