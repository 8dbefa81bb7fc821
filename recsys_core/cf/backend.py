"""The one place ``implicit`` models are built, fitted and copied back to numpy.

Like LensKit's implicit bridge: the implicit object is a training-time detail. Scorers fit it
on the users x items CSR, copy what they need (factors, similarity) into plain numpy/scipy
arrays and drop it, so a pickled model loads on any machine, with or without a GPU or
``implicit`` itself. ``implicit`` is imported lazily for the same reason.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import threadpoolctl

from recsys_core.scoring import TrainOptions

log = logging.getLogger(__name__)

ImplicitKind = Literal["als", "bpr", "cosine", "bm25"]
_GPU_KINDS = ("als", "bpr")


def num_threads(options: TrainOptions, kind: ImplicitKind) -> int:
    """Threads for implicit's native code: ``options.num_threads`` when set, else a default.

    The default is 0 (all cores), except for BPR: its CPU SGD is Hogwild (threads race on
    shared factors), so only a single thread reproduces a seed exactly. Setting
    ``num_threads`` on the options trades that reproducibility for speed.

    Args:
        options: the run's options (``num_threads`` is optional on them).
        kind: the implicit model kind.
    """
    threads = getattr(options, "num_threads", None)
    if threads is None:
        return 1 if kind == "bpr" else 0
    return int(threads)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread while implicit runs, as implicit recommends.

    implicit parallelises itself; a threaded OpenBLAS/MKL underneath it oversubscribes the
    cores (and implicit warns). The limit is scoped, so global settings stay untouched.
    """
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


def use_gpu(device: str) -> bool:
    """Whether implicit's CUDA build should be used for ``device``.

    Args:
        device: the requested device (``cpu`` or ``cuda``/``cuda:N``).
    """
    if not device.startswith("cuda"):
        return False
    import implicit.gpu

    if not implicit.gpu.HAS_CUDA:
        log.warning("device %r requested but implicit has no CUDA support; using CPU", device)
        return False
    return True


def build_model(kind: ImplicitKind, params: dict[str, Any], options: TrainOptions) -> Any:
    """Build an unfitted implicit model: GPU for ALS/BPR when asked and available, else CPU.

    Args:
        kind: ``als``, ``bpr``, ``cosine`` or ``bm25`` (item-kNN similarity).
        params: the model's hyperparameters in implicit's own names.
        options: seed (``random_state``), device and thread count.
    """
    gpu = kind in _GPU_KINDS and use_gpu(options.device)
    threads = num_threads(options, kind)
    with single_threaded_blas():
        if kind == "als":
            if gpu:
                from implicit.gpu.als import AlternatingLeastSquares
                return AlternatingLeastSquares(**params, random_state=options.seed)
            from implicit.cpu.als import AlternatingLeastSquares
            return AlternatingLeastSquares(**params, num_threads=threads,
                                           random_state=options.seed)
        if kind == "bpr":
            if gpu:
                from implicit.gpu.bpr import BayesianPersonalizedRanking
                return BayesianPersonalizedRanking(**params, random_state=options.seed)
            from implicit.cpu.bpr import BayesianPersonalizedRanking
            return BayesianPersonalizedRanking(**params, num_threads=threads,
                                               random_state=options.seed)
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        if kind == "cosine":
            return CosineRecommender(**params, num_threads=threads)
        if kind == "bm25":
            return BM25Recommender(**params, num_threads=threads)
    raise ValueError(f"unknown implicit model kind {kind!r}")


def fit(model: Any, matrix: sp.csr_matrix) -> Any:
    """Fit ``model`` on a users x items CSR quietly (no progress bar, no BLAS warning).

    Args:
        model: an object from ``build_model``.
        matrix: users x items weights (float32 CSR).
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    with single_threaded_blas(), warnings.catch_warnings():
        # implicit's item-kNN reweights into COO itself, then warns about converting it back.
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        model.fit(matrix, show_progress=False)
    return model


def to_numpy(array: Any) -> np.ndarray:
    """Copy implicit factors to a float32 numpy array, from host or GPU memory.

    Args:
        array: a numpy array or an ``implicit.gpu.Matrix``.
    """
    if hasattr(array, "to_numpy"):
        array = array.to_numpy()
    return np.array(array, dtype=np.float32, copy=True)
