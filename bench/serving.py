"""Serving benchmark: in-process latency, HTTP throughput per request kind, CLI latency.

Trains the default fused sources (ALS, item-kNN, EASE, text, projector, LM graph, user
encoder; equal fusion weights, since latency does not depend on their values) on ml-latest-small
(``leave_last`` split), registers the model with every user's precomputed top-``--top-k``
(``lifecycle.batch.precompute``), then measures:

1. in process, after a warm-up: one known user's top-10 online (``HybridRecommender``) and
   from the precomputed list (``ServedModel``), fold-in from 5 recent items, an unknown user
   (fallback), similar items, a text query, an explanation, the MLflow pyfunc's ``predict``;
2. over HTTP on loopback, ``recsys serve``'s server (``flows.app.server``) with 1 and 2
   workers, loaded by a second process (``--load``) holding ``--concurrency`` keep-alive
   connections for ``--duration`` seconds, one top-10 per request, for three request kinds:
   a known user (answered from the precomputed lists), 5 recent items (fold-in) and a text
   query; the targets: known users >= 500 requests/s with p99 <= 20 ms, fold-in >= 100
   requests/s, no errors. ``--mlflow`` adds ``mlflow models serve`` (1 worker) of the same
   version for known users, for comparison;
3. ``recsys recommend`` as a user runs it (a fresh process, warm disk): a known user, 5
   recent items, a text query;
4. the memory the precomputed lists take: bytes per user, per million users at K = 100.

Server and load generator share the machine's cores: run it on an otherwise idle machine.
State (warehouse with its embedding cache, MLflow store) lives in ``--home`` (default
``.recsys/bench-serving``), so a rerun skips the embedding. Skips when the data is absent.

    python bench/serving.py
    python bench/serving.py --duration 20 --workers 2 --concurrency 4 8 --mlflow
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
SOURCES = {"als": {}, "itemknn": {}, "ease": {}, "text": {}, "projector": {}, "graph": {},
           "user_encoder": {}}
WORDS = ["space", "war", "love", "comedy", "crime", "animated", "family", "horror", "robot",
         "heist", "romance", "detective"]
KINDS = {"user": "known user (precomputed list)", "fold_in": "5 recent items (fold-in)",
         "query": "text query"}
TARGETS = {"user": (500, 20.0), "fold_in": (100, None), "query": (None, None)}
"""Per request kind: (requests/s at least, p99 ms at most), None where nothing is asked."""


def percentiles(seconds: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "mean": float(ms.mean()), "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max())}


# --------------------------------------------------------------------------- load generator

def request_body(kind: str, rng: random.Random, users: list[str], items: list[str]) -> str:
    """One top-10 request of ``kind`` in MLflow's ``dataframe_split`` format."""
    if kind == "user":
        columns, row = ["user_id", "k"], [rng.choice(users), 10]
    elif kind == "fold_in":
        columns, row = ["recent_items", "k"], [rng.sample(items, 5), 10]
    else:
        columns, row = ["query", "k"], [" ".join(rng.sample(WORDS, 3)), 10]
    return json.dumps({"dataframe_split": {"columns": columns, "data": [row]}})


def load(url: str, kind: str, users: list[str], items: list[str], duration: float,
         concurrency: int, warmup: float) -> dict:
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
            body = request_body(kind, rng, users, items)
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


def register(final, settings, top_k: int) -> tuple[str, object, float]:
    """Register the model with its precomputed lists; (version, the lists, seconds)."""
    from recsys_core.lifecycle import registry
    from recsys_core.lifecycle.batch import precompute, publish_top_k

    start = time.perf_counter()
    lists = precompute(final.model, top_k)
    seconds = time.perf_counter() - start
    version = registry.register(
        final.model, final.model_dir, {"dataset": "ml-latest-small", "protocol": "leave_last",
                                       "k": 10, "models": final.evaluation.metrics},
        {"sources": SOURCES}, {"snapshot_id": "bench", "validation": "skipped",
                               "git_commit": "bench", "encoder": settings.encoder}, settings,
        top_k=lists)
    publish_top_k(settings, lists, version.name, version.version)
    mlc = registry.client(settings)
    mlc.set_registered_model_alias(settings.model_name, registry.CHAMPION, version.version)
    return version.version, lists, seconds


def in_process(final, settings, version: str, requests: int, seed: int) -> dict:
    import mlflow
    import pandas as pd

    from recsys_core.lifecycle import registry, served

    model = final.model
    rng = random.Random(seed)
    users = [str(u) for u in model.users.ids]
    items = [str(i) for i in model.items.ids]
    found = served.open_served(settings, version)
    assert found is not None
    lists = found[1]
    rows = {}
    rows["user top-10 (online)"] = time_calls(lambda u: model.recommend(u, 10),
                                              [(rng.choice(users),) for _ in range(requests)])
    rows["user top-10 (precomputed list)"] = time_calls(
        lambda u: lists.recommend(u, 10), [(rng.choice(users),) for _ in range(requests)])
    rows["5 recent items (fold-in) top-10"] = time_calls(
        lambda h: model.recommend(None, 10, recent_items=h),
        [(rng.sample(items, 5),) for _ in range(max(requests // 4, 100))])
    rows["unknown user (fallback) top-10"] = time_calls(
        lambda u: model.recommend(u, 10), [(f"new-{i}",) for i in range(requests)])
    rows["similar_items top-10"] = time_calls(
        lambda i: model.similar_items(i, 10),
        [(rng.choice(items),) for _ in range(max(requests // 4, 100))])
    rows["text query top-10"] = time_calls(
        lambda q: model.recommend(query=q, k=10),
        [(" ".join(rng.sample(WORDS, 3)),) for _ in range(200)], warmup=5)
    rows["explain (top item)"] = time_calls(
        lambda u, i: model.explain(u, i),
        [(u, model.recommend(u, 1)[0].item_id) for u in rng.sample(users, 100)], warmup=5)
    pyfunc = mlflow.pyfunc.load_model(registry.model_uri(settings, version))
    rows["pyfunc predict (1 user, MLflow)"] = time_calls(
        lambda u: pyfunc.predict(pd.DataFrame({"user_id": [u], "k": [10]})),
        [(rng.choice(users),) for _ in range(max(requests // 2, 100))])
    return rows


def run_load(url: str, kind: str, state: Path, duration: float, clients: int,
             warmup: float) -> dict:
    command = [sys.executable, __file__, "--load", url, "--kind", kind, "--state", str(state),
               "--duration", str(duration), "--concurrency", str(clients), "--warmup",
               str(warmup)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def over_http(settings, state: Path, workers: list[int], duration: float,
              concurrency: list[int]) -> list[dict]:
    from flows.app.serve import start_server, stop_server, wait_until_ready

    out = []
    for count in workers:
        port = 5000 + random.Random().randrange(1000, 20000)
        process, _ = start_server(settings, "127.0.0.1", port, count)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, process, timeout=300)
            for kind in KINDS:
                for clients in concurrency:
                    # /ping answers once one worker is up: the first seconds warm up the others
                    result = run_load(url, kind, state, duration, clients,
                                      2.0 + 4.0 * (count - 1))
                    out.append({"server": "recsys serve", "kind": kind, "workers": count,
                                "concurrency": clients, **result})
        finally:
            stop_server(process)
    return out


def mlflow_http(settings, version: str, state: Path, duration: float,
                concurrency: list[int]) -> list[dict]:
    """``mlflow models serve`` (1 worker) of the same version, known users only."""
    from flows.app.serve import server_env, stop_server, wait_until_ready
    from recsys_core.lifecycle import registry

    port = 5000 + random.Random().randrange(1000, 20000)
    env = server_env() | {"MLFLOW_TRACKING_URI": settings.tracking_uri,
                          "UVICORN_ACCESS_LOG": "false",  # a log line per request costs ~10%
                          "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                                registry.model_uri(settings, version), "--env-manager", "local",
                                "-h", "127.0.0.1", "-p", str(port), "-w", "1"], env=env)
    url = f"http://127.0.0.1:{port}"
    out = []
    try:
        wait_until_ready(url, process, timeout=300)
        for clients in concurrency:
            out.append({"server": "mlflow models serve", "kind": "user", "workers": 1,
                        "concurrency": clients,
                        **run_load(url, "user", state, duration, clients, 2.0)})
    finally:
        stop_server(process)
    return out


def cli_latency(settings, users: list[str], items: list[str], repeat: int = 3) -> dict:
    """Seconds per ``recsys recommend`` (a fresh process each; the first call warms the disk)."""
    recsys = str(Path(sys.executable).parent / "recsys")
    env = dict(os.environ) | {"RECSYS_HOME": str(settings.home)}
    cases = {"known user": [users[0]], "5 recent items (fold-in)":
             [arg for item in items[:5] for arg in ("--recent", item)],
             "text query": ["--query", "space robots"]}
    out = {}
    for name, args in cases.items():
        seconds = []
        for _ in range(repeat + 1):
            start = time.perf_counter()
            subprocess.run([recsys, "recommend", *args, "--k", "10"], env=env, check=True,
                           capture_output=True)
            seconds.append(time.perf_counter() - start)
        out[name] = seconds[1:]  # the first warms the disk cache (and copies the version)
    return out


def table(title: str, head: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(kind: str, rps: float, p99: float) -> str:
    floor, ceiling = TARGETS[kind]
    if floor is None:
        return "-"
    met = rps >= floor and (ceiling is None or p99 <= ceiling)
    asked = f">= {floor} req/s" + (f", p99 <= {ceiling:.0f} ms" if ceiling else "")
    return f"{'met' if met else 'MISSED'} ({asked})"


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".recsys" / "bench-serving")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--mlflow", action="store_true",
                        help="also measure mlflow models serve (known users, 1 worker)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="user", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load-generator process
        state = json.loads(Path(args.state).read_text())
        print(json.dumps(load(args.load, args.kind, state["users"], state["items"],
                              args.duration, args.concurrency[0], args.warmup)))
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
    version, lists, seconds = register(final, settings, args.top_k)
    print(f"precomputed top-{lists.k} of {len(lists)} users in {seconds:.1f}s; "
          f"{lists.bytes_per_user} bytes per user ({len(lists.sources)} sources: int32 item, "
          f"float32 score, float32 per source) = "
          f"{lists.bytes_per_user * 1e6 / 2**30:.2f} GiB per million users at K = {lists.k}\n")
    rows = in_process(final, settings, version, args.requests, args.seed)
    print(table("In process, milliseconds", ["call", "n", "mean", "p50", "p90", "p99", "max"],
                [[name, str(r["n"]), *(f"{r[c]:.2f}" for c in ("mean", "p50", "p90", "p99",
                                                               "max"))]
                 for name, r in rows.items()]))
    users = [str(u) for u in model.users.ids]
    items = [str(i) for i in model.items.ids]
    state = settings.home / "bench-state.json"
    state.write_text(json.dumps({"users": users, "items": items}))
    print(f"\nload average before HTTP: {load_average()}")
    http = over_http(settings, state, args.workers, args.duration, args.concurrency)
    if args.mlflow:
        http += mlflow_http(settings, version, state, args.duration, args.concurrency)
    print(table(f"HTTP on loopback, {args.duration:.0f} s closed loop per row, one top-10 per "
                "request, server and load generator on the same cores (latency ms)",
                ["request", "server", "workers", "connections", "requests", "errors", "req/s",
                 "p50", "p99", "target"],
                [[KINDS[r["kind"]], r["server"], str(r["workers"]), str(r["concurrency"]),
                  str(r["requests"]), str(r["errors"]), f"{r['rps']:.0f}", f"{r['p50']:.1f}",
                  f"{r['p99']:.1f}", verdict(r["kind"], r["rps"], r["p99"])
                  if r["server"] == "recsys serve" else "-"]
                 for r in http]))
    print(f"load average after HTTP: {load_average()}\n")
    cli = cli_latency(settings, users, items)
    print(table("recsys recommend, seconds per call (fresh process, warm disk)",
                ["request", "calls", "min", "max"],
                [[name, str(len(s)), f"{min(s):.2f}", f"{max(s):.2f}"]
                 for name, s in cli.items()]))


if __name__ == "__main__":
    main()
