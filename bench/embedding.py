"""Embedding throughput: a plain transformers loop beside the recsys_core.embed engine.

Both embed the same texts in the same run: ml-latest-small item documents (title, genres,
tags) and synthetic documents of exactly 16 and 128 tokens. The plain loop is what most code
does: texts in the given order, a fixed batch of 32 padded to its longest text, fp32, torch's
default threads, mean pooling and L2 normalisation. The engine is ``embed_documents`` with a
fresh ``TextEncoder`` per dataset; its one-off calibration on the dataset (choosing the
numeric path and threads) is timed as part of the engine's time.

To be fair on a shared machine, each dataset is split into ``--rounds`` interleaved parts and
the two contenders alternate part by part; the times are summed.

FLOP rate: 2 x (non-embedding parameters) x (real, unpadded tokens) per second; padding and
attention FLOPs are not counted, so the plain loop's padded work does not inflate its rate.

    python bench/embedding.py --limit 3000               # CPU
    python bench/embedding.py --device cuda              # sizes itself to about 4 minutes
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from recsys_core.embed import (  # noqa: E402
    DocumentTemplate,
    EncoderConfig,
    TextEncoder,
    embed_documents,
    item_documents,
    resolve_device,
    tags_by_item,
)

DEFAULT_THREADS = torch.get_num_threads()  # before the engine sets its own
CLOCK: Callable[[], float] = time.perf_counter
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"
PLAIN_BATCH = 32


@dataclass
class Row:
    dataset: str
    n: int
    tokens: int
    plain_s: float
    engine_s: float
    path: str
    calibration: str
    cos_mean: float
    cos_min: float


def movie_documents(limit: int | None) -> list[str]:
    movies = pl.read_csv(DATA / "movies.csv")
    if limit is not None:
        movies = movies.head(limit)
    items = movies.select(
        pl.col("movieId").cast(pl.String).alias("item_id"),
        "title",
        pl.col("genres").str.split("|").list.filter(pl.element() != "(no genres listed)")
        .alias("categories"),
    )
    tags = tags_by_item(pl.read_csv(DATA / "tags.csv"), item_col="movieId")
    return item_documents(items, DocumentTemplate(), tags=tags)


def synthetic_documents(tokenizer, n: int, tokens: int, seed: int = 0) -> list[str]:
    """``n`` texts of exactly ``tokens`` tokens (special tokens included) from whole words."""
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) >= 3]
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    words = np.array([w for w, i in zip(words, ids, strict=True) if len(i) == 1])
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, tokens - 2)) for _ in range(n)]


class PlainLoop:
    """The baseline: unsorted fixed batches, fp32, default threads, mean pooling."""

    def __init__(self, model_dir: Path, device: torch.device, max_length: int,
                 threads: int) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32)
        self.model = self.model.eval().to(device)
        self.device = device
        self.max_length = max_length
        self.threads = threads

    def __call__(self, texts: list[str]) -> np.ndarray:
        torch.set_num_threads(self.threads)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), PLAIN_BATCH):
                batch = self.tokenizer(texts[start:start + PLAIN_BATCH], padding=True,
                                       truncation=True, max_length=self.max_length,
                                       return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out.append(F.normalize(pooled, dim=-1).cpu())
        return torch.cat(out).numpy()


def timed(fn: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[np.ndarray, float]:
    started = CLOCK()
    vectors = fn(texts)
    return vectors, CLOCK() - started


def bench_dataset(name: str, texts: list[str], plain: PlainLoop, config: EncoderConfig,
                  rounds: int) -> Row:
    encoder = TextEncoder(config)
    encoder.model  # noqa: B018 - load weights outside the timing, as the plain loop does
    plain(texts[:PLAIN_BATCH])  # warm-up
    tokens = sum(len(ids) for ids in encoder.tokenize(texts))
    parts = [list(range(r, len(texts), rounds)) for r in range(min(rounds, len(texts)))]
    plain_vecs = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    engine_vecs = np.zeros_like(plain_vecs)
    started = CLOCK()
    encoder.calibrate(texts)  # what one whole-dataset job does first; timed as engine work
    plain_s, engine_s = 0.0, CLOCK() - started
    for r, part in enumerate(parts):
        chunk = [texts[i] for i in part]
        contenders = [("plain", plain), ("engine", lambda t: embed_documents(t, encoder))]
        for label, fn in contenders if r % 2 == 0 else contenders[::-1]:
            vectors, seconds = timed(fn, chunk)
            if label == "plain":
                plain_vecs[part], plain_s = vectors, plain_s + seconds
            else:
                engine_vecs[part], engine_s = vectors, engine_s + seconds
    cosine = (plain_vecs * engine_vecs).sum(axis=1)
    calibration = encoder.calibration.describe() if encoder.calibration else "fp32 (too few)"
    return Row(name, len(texts), tokens, plain_s, engine_s, encoder.numeric_path, calibration,
               float(cosine.mean()), float(cosine.min()))


def size_for_budget(plain: PlainLoop, sample: list[str], budget_s: float, cap: int) -> int:
    """How many texts the plain loop embeds in ``budget_s`` (probed for about 2 seconds)."""
    plain(sample[:PLAIN_BATCH])  # warm-up
    n = 2 * PLAIN_BATCH
    while True:
        _, seconds = timed(plain, sample[:n])
        if seconds >= 2.0 or n >= len(sample):
            break
        n = min(len(sample), 4 * n)
    return max(PLAIN_BATCH, min(cap, int(n / max(seconds, 1e-6) * budget_s)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=None, help="most texts per dataset")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved parts per dataset")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="size the datasets to about this many seconds in all "
                        "(default: 240 on GPUs; CPU runs are sized by --limit unless given)")
    parser.add_argument("--quantize", default="auto", help="engine numeric path (auto, none, ...)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for both (default: plain loop torch's default, "
                        "engine its own choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: process CPU time, a steadier measure of work on a CPU shared "
                        "with other busy processes (use with --threads 1)")
    parser.add_argument("--log", action="store_true", help="show recsys_core logs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.log else logging.WARNING)

    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    config = EncoderConfig(name_or_path=args.model, device=args.device, quantize=args.quantize,
                           threads=args.threads)
    probe = TextEncoder(config)
    device = resolve_device(args.device)
    plain = PlainLoop(probe.model_dir, device, probe.max_length, args.threads or DEFAULT_THREADS)
    params = probe.n_parameters()
    gpu = device.type == "cuda"
    print(f"# model {probe.label} ({params / 1e6:.1f}M non-embedding params, "
          f"max_length {probe.max_length}, pooling {probe.pooling})")
    print(f"# device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if gpu else f" ({platform.processor()}"
             f"{platform.machine()}, {os.cpu_count()} cores, torch default threads "
             f"{DEFAULT_THREADS}, plain loop {plain.threads})")
          + f"; torch {torch.__version__}; plain loop: batch {PLAIN_BATCH}, unsorted, fp32; "
          f"{args.clock} clock")
    print(f"# load average at start {os.getloadavg()[0]:.1f} (other processes share the CPU)")

    movies = movie_documents(args.limit)
    cap16 = args.limit or (200_000 if gpu else 4000)
    cap128 = args.limit or (100_000 if gpu else 1000)
    budget_s = args.budget_s or (240.0 if gpu else None)
    if budget_s:  # size each dataset to a third of the budget, mostly plain-loop time
        share = budget_s / 3 / 1.5
        movies = movies[: size_for_budget(plain, movies, share, len(movies))]
        cap16 = size_for_budget(plain, synthetic_documents(plain.tokenizer, 16384, 16), share,
                                cap16)
        cap128 = size_for_budget(plain, synthetic_documents(plain.tokenizer, 8192, 128), share,
                                 cap128)
    datasets = {
        "ml-latest-small docs": movies,
        "synthetic 16 tok": synthetic_documents(plain.tokenizer, cap16, 16, seed=1),
        "synthetic 128 tok": synthetic_documents(plain.tokenizer, cap128, 128, seed=2),
    }
    rows = []
    for name, texts in datasets.items():
        texts = list(dict.fromkeys(texts))  # distinct: the engine would embed a duplicate once
        row = bench_dataset(name, texts, plain, config, args.rounds)
        rows.append(row)
        print(f"# {name}: engine path {row.path}; calibration {row.calibration}", flush=True)

    header = ("| dataset | texts | tok/text | plain texts/s | plain GFLOP/s | engine texts/s "
              "| engine GFLOP/s | speed-up | engine path | cosine to plain (mean / min) |")
    print(f"# load average at end {os.getloadavg()[0]:.1f}")
    print()
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for row in rows:
        flops = 2.0 * params * row.tokens / 1e9
        print(f"| {row.dataset} | {row.n} | {row.tokens / row.n:.1f} "
              f"| {row.n / row.plain_s:,.0f} | {flops / row.plain_s:,.1f} "
              f"| {row.n / row.engine_s:,.0f} | {flops / row.engine_s:,.1f} "
              f"| {row.plain_s / row.engine_s:.1f}x | {row.path} "
              f"| {row.cos_mean:.5f} / {row.cos_min:.5f} |")


if __name__ == "__main__":
    main()
