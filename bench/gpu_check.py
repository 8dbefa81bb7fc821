"""GPU check: the embedding stage and the sequential Transformer on CUDA, against the CPU.

One short script (well under 5 minutes on one GPU) that prints a table:

- embedding: texts/s of the packaged all-MiniLM-L6-v2 on CUDA (its fastest numeric path)
  and on the CPU (fp32), and the least cosine between the CUDA and CPU vectors;
- user encoder: seconds per epoch and epochs run when training on CUDA and on the CPU, and
  the largest difference between user vectors computed from the same trained weights on
  CUDA and on the CPU (the one network, two devices).

Data: synthetic interactions and item texts from the product's generator (no download).
Without a CUDA device it prints "no CUDA device" and exits 0.

    python bench/gpu_check.py [--interactions 200000] [--texts 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=200_000)
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cuda",
                        help="the device checked against the CPU (cpu: a dry run of the script)")
    args = parser.parse_args()
    target = args.device
    if target.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (exit 0)")
        return 0

    from recsys_core.data import schema as S
    from recsys_core.data.interactions import InteractionData
    from recsys_core.data.loaders import synthetic_config
    from recsys_core.data.synthetic import generate
    from recsys_core.data.vocab import Vocabulary
    from recsys_core.deep.user_encoder import UserEncoder, UserEncoderConfig, encode
    from recsys_core.embed.config import EncoderConfig
    from recsys_core.embed.documents import item_documents
    from recsys_core.embed.encoder import TextEncoder
    from recsys_core.evaluation.splits import split
    from recsys_core.scoring import TrainOptions

    name = torch.cuda.get_device_name(0) if target.startswith("cuda") else target
    print(f"device: {name}; torch {torch.__version__}; {platform.platform()}")
    dataset = generate(synthetic_config(args.interactions))
    documents = item_documents(dataset.items)
    texts = (documents * (args.texts // max(len(documents), 1) + 1))[:args.texts]
    rows: list[tuple[str, str]] = []

    vectors = {}
    for device in (target, "cpu"):
        encoder = TextEncoder(EncoderConfig(device=device,
                                            quantize="auto" if device == target else "fp32"))
        sample = texts if device == target else texts[:2000]
        encoder.encode(sample[:256])  # load and warm up
        start = time.perf_counter()
        vectors[device] = encoder.encode(sample)
        seconds = time.perf_counter() - start
        rows.append((f"embed texts/s ({device}, {encoder.numeric_path})",
                     f"{len(sample) / seconds:,.0f}"))
    n = len(vectors["cpu"])
    cosine = float((vectors[target][:n] * vectors["cpu"]).sum(axis=1).min())
    rows.append((f"embed least cosine {target} vs cpu", f"{cosine:.5f}"))

    train = split(dataset.interactions, "leave_last").train
    embeddings = TextEncoder(EncoderConfig(device=target)).encode(documents)
    data = InteractionData.from_frame(
        train, Vocabulary(sorted(train[S.USER_ID].unique().to_list())),
        Vocabulary(dataset.items[S.ITEM_ID].to_list()), embeddings)
    config = UserEncoderConfig(epochs=args.epochs, early_stopping="none")
    models = {}
    for device in (target, "cpu"):
        epochs = args.epochs if device == target else 1
        start = time.perf_counter()
        models[device] = UserEncoder(config.model_copy(update={"epochs": epochs})).train(
            data, TrainOptions(seed=1, device=device))
        seconds = time.perf_counter() - start
        rows.append((f"user encoder s/epoch ({device}, {data.n_users} users, "
                     f"{data.matrix.nnz} interactions)", f"{seconds / epochs:.2f}"))
    model = models[target]
    sequences = [data.sequence(u) for u in range(min(data.n_users, 2000))]
    with torch.no_grad():
        on_cpu = encode(model.net.cpu().eval(), torch.from_numpy(model.item_vectors),
                         sequences, config.max_len).numpy()
        net = model.net.to(target).eval()
        on_gpu = encode(net, torch.from_numpy(model.item_vectors).to(target), sequences,
                         config.max_len).cpu().numpy()
    model.net.cpu()
    rows.append((f"user vectors max |{target} - cpu| (same weights)",
                 f"{float(np.abs(on_gpu - on_cpu).max()):.2e}"))
    rows.append((f"user vectors vs trained ({target} run)",
                 f"{float(np.abs(on_cpu - model.user_vectors[:len(sequences)]).max()):.2e}"))

    width = max(len(name) for name, _ in rows)
    print(f"\n| {'check'.ljust(width)} | value |\n|{'-' * (width + 2)}|------:|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    agree = cosine > 0.99 and float(np.abs(on_gpu - on_cpu).max()) < 1e-3
    print(f"\nCPU and {target} agree" if agree else f"\nCPU and {target} DISAGREE")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
