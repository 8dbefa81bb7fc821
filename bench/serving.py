"""Serving benchmark: in-process latency of the hybrid model, and HTTP throughput.

Trains the default fused sources (ALS, item-kNN, EASE, text, projector, user encoder; equal
fusion weights, since latency does not depend on their values) on ml-latest-small
(``leave_last`` split), then measures:

1. in process, ``HybridRecommender`` calls after a warm-up: one known user's top-10 (the
   target: p99 <= 20 ms), fold-in from 5 recent items, an unknown user (fallback), similar
   items, a text query, an explanation, and the MLflow pyfunc's ``predict`` for one user;
2. over HTTP, ``mlflow models serve`` of the registered model on loopback, loaded by a second
   process (``--load``) holding ``--concurrency`` keep-alive connections for ``--duration``
   seconds, one user's top-10 per request (the target: >= 300 requests/s), with 1 and 2
   server workers (uvicorn's access log off; several workers go through the launcher of
   ``flows.app.uvicorn_launcher``, without which each keep-alive request waits ~44 ms).

State (warehouse with its embedding cache, MLflow store) lives in ``--home`` (default
``.recsys/bench-serving``), so a rerun skips the embedding. Skips when the data is absent.

    python bench/serving.py
    python bench/serving.py --requests 5000 --duration 20 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ml-latest-small"
SOURCES = {"als": {}, "itemknn": {}, "ease": {}, "text": {}, "projector": {},
           "user_encoder": {}}


def percentiles(seconds: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "mean": float(ms.mean()), "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max())}


# --------------------------------------------------------------------------- load generator

def load(url: str, users: list[str], duration: float, concurrency: int, warmup: float
         ) -> dict:
    """Closed-loop load: ``concurrency`` keep-alive connections, one request in flight each."""
    host, port = url.removeprefix("http://").split(":")
    stop_at = time.perf_counter() + warmup + duration
    measure_from = time.perf_counter() + warmup
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def connect() -> HTTPConnection:
        # http.client sends headers and body in two writes: without TCP_NODELAY, Nagle holds
        # the body until the server's delayed ACK (~40 ms). Real clients (urllib3, httpx) set
        # it too.
        conn = HTTPConnection(host, int(port), timeout=30)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = connect()
        mine, bad = [], 0
        while (start := time.perf_counter()) < stop_at:
            body = json.dumps({"dataframe_split": {"columns": ["user_id", "k"],
                                                   "data": [[rng.choice(users), 10]]}})
            try:
                conn.request("POST", "/invocations", body,
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                ok = response.status == 200 and len(json.loads(payload)["predictions"]) == 10
            except (OSError, ValueError):
                ok = False
                conn.close()
                conn = connect()
            if start >= measure_from:
                if ok:
                    mine.append(time.perf_counter() - start)
                else:
                    bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"requests": len(latencies), "errors": errors[0],
            "rps": len(latencies) / duration, **percentiles(latencies or [0.0])}


# --------------------------------------------------------------------------- the benchmark

def train(home: Path, seed: int):
    os.environ["RECSYS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from flows.app.env import apply_defaults

    apply_defaults()
    from recsys_core import pipeline
    from recsys_core.config import get_settings
    from recsys_core.data.loaders import load_dataset
    from recsys_core.fusion.weighted import FusionConfig
    from recsys_core.scoring import TrainOptions
    from recsys_core.warehouse.store import Warehouse

    settings = get_settings()
    timings = {}
    start = time.perf_counter()
    snapshot = Warehouse(settings.warehouse_path).load(load_dataset(DATA))
    store = pipeline.prepare_run(settings, snapshot, "leave_last", seed)
    timings["ingest+split"] = time.perf_counter() - start
    start = time.perf_counter()
    result, embeddings = pipeline.embed_items(store, settings, settings.encoder)
    timings["embed"] = time.perf_counter() - start
    paths = {}
    for name, params in SOURCES.items():
        start = time.perf_counter()
        paths[name] = pipeline.train_source(store, name, params, "train",
                                            TrainOptions(seed=seed), embeddings)
        timings[f"train {name}"] = time.perf_counter() - start
    start = time.perf_counter()
    final = pipeline.evaluate_run(store, paths, {}, FusionConfig(
        weights=dict.fromkeys(SOURCES, 1.0)), 10, {"dataset": "ml-latest-small"})
    timings["evaluate"] = time.perf_counter() - start
    final.model.encoder = settings.encoder
    return settings, store, final, timings, result


def time_calls(call, args_list: list, warmup: int = 30) -> dict[str, float]:
    for args in args_list[:warmup]:
        call(*args)
    seconds = []
    for args in args_list:
        start = time.perf_counter()
        call(*args)
        seconds.append(time.perf_counter() - start)
    return percentiles(seconds)


def in_process(final, settings, requests: int, seed: int) -> tuple[dict, str]:
    import mlflow
    import pandas as pd

    from recsys_core.lifecycle import registry

    model = final.model
    rng = random.Random(seed)
    users = [str(u) for u in model.users.ids]
    items = [str(i) for i in model.items.ids]
    rows = {}
    rows["user top-10"] = time_calls(lambda u: model.recommend(u, 10),
                                     [(rng.choice(users),) for _ in range(requests)])
    rows["5 recent items (fold-in) top-10"] = time_calls(
        lambda h: model.recommend(None, 10, recent_items=h),
        [(rng.sample(items, 5),) for _ in range(max(requests // 4, 100))])
    rows["unknown user (fallback) top-10"] = time_calls(
        lambda u: model.recommend(u, 10), [(f"new-{i}",) for i in range(requests)])
    rows["similar_items top-10"] = time_calls(
        lambda i: model.similar_items(i, 10),
        [(rng.choice(items),) for _ in range(max(requests // 4, 100))])
    words = ["space", "war", "love", "comedy", "crime", "animated", "family", "horror",
             "robot", "heist", "romance", "detective"]
    rows["text query top-10"] = time_calls(
        lambda q: model.recommend(query=q, k=10),
        [(" ".join(rng.sample(words, 3)),) for _ in range(200)], warmup=5)
    rows["explain (top item)"] = time_calls(
        lambda u, i: model.explain(u, i),
        [(u, model.recommend(u, 1)[0].item_id) for u in rng.sample(users, 100)], warmup=5)
    version = registry.register(
        model, final.model_dir, {"dataset": "ml-latest-small", "protocol": "leave_last",
                                 "k": 10, "models": final.evaluation.metrics},
        {"sources": SOURCES}, {"snapshot_id": "bench", "validation": "skipped",
                               "git_commit": "bench", "encoder": settings.encoder}, settings)
    pyfunc = mlflow.pyfunc.load_model(registry.model_uri(settings, version.version))
    rows["pyfunc predict (1 user, MLflow)"] = time_calls(
        lambda u: pyfunc.predict(pd.DataFrame({"user_id": [u], "k": [10]})),
        [(rng.choice(users),) for _ in range(max(requests // 2, 100))])
    return rows, version.version


def over_http(settings, version: str, users: list[str], workers: list[int], duration: float,
              concurrency: list[int]) -> list[dict]:
    from flows.app.serve import start_server, stop_server, wait_until_ready
    from recsys_core.lifecycle import registry

    mlc = registry.client(settings)
    mlc.set_registered_model_alias(settings.model_name, registry.CHAMPION, version)
    os.environ["UVICORN_ACCESS_LOG"] = "false"  # a log line per request costs ~10% here
    out = []
    users_file = settings.home / "bench-users.json"
    users_file.write_text(json.dumps(users))
    for count in workers:
        port = 5000 + random.Random().randrange(1000, 20000)
        process, _ = start_server(settings, "127.0.0.1", port, count)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, process, timeout=180)
            for clients in concurrency:
                # /ping answers once one worker is up; the first seconds warm up the others
                command = [sys.executable, __file__, "--load", url, "--users-file",
                           str(users_file), "--duration", str(duration), "--concurrency",
                           str(clients), "--warmup", str(2.0 + 4.0 * (count - 1))]
                result = subprocess.run(command, capture_output=True, text=True, check=True)
                out.append({"workers": count, "concurrency": clients,
                            **json.loads(result.stdout.strip().splitlines()[-1])})
        finally:
            stop_server(process)
    return out


def table(title: str, head: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".recsys" / "bench-serving")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--users-file", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load-generator process
        users = json.loads(Path(args.users_file).read_text())
        print(json.dumps(load(args.load, users, args.duration, args.concurrency[0],
                              args.warmup)))
        return
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return
    sys.path.insert(0, str(ROOT))
    settings, store, final, timings, embedded = train(args.home, args.seed)
    import torch

    model = final.model
    print(f"ml-latest-small: {len(model.users)} users, {len(model.items)} items, "
          f"{model.seen.nnz} training pairs; sources {', '.join(model.sources)}; "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"torch threads {torch.get_num_threads()}")
    print("setup seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
          + f" (embedding: {embedded.n_cached} cached, {embedded.n_embedded} embedded)")
    print(f"test ndcg@10 fused {final.evaluation.metrics['fused']['ndcg@10']:.4f}\n")
    rows, version = in_process(final, settings, args.requests, args.seed)
    print(table("In process (HybridRecommender), milliseconds",
                ["call", "n", "mean", "p50", "p90", "p99", "max"],
                [[name, str(r["n"]), *(f"{r[c]:.2f}" for c in ("mean", "p50", "p90", "p99",
                                                               "max"))]
                 for name, r in rows.items()]))
    target = rows["user top-10"]["p99"]
    print(f"\ntarget p99 <= 20 ms for a user's top-10: {target:.2f} ms -> "
          f"{'met' if target <= 20 else 'MISSED'}\n")
    users = [str(u) for u in model.users.ids]
    http = over_http(settings, version, users, args.workers, args.duration, args.concurrency)
    print(table(f"HTTP, mlflow models serve on loopback, {args.duration:.0f} s closed loop, "
                "one user's top-10 per request (latency ms)",
                ["workers", "connections", "requests", "errors", "req/s", "p50", "p99"],
                [[str(r["workers"]), str(r["concurrency"]), str(r["requests"]),
                  str(r["errors"]), f"{r['rps']:.0f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}"]
                 for r in http]))
    best = max(r["rps"] for r in http)
    print(f"\ntarget >= 300 req/s over HTTP: best {best:.0f} req/s -> "
          f"{'met' if best >= 300 else 'MISSED'}")


if __name__ == "__main__":
    main()
