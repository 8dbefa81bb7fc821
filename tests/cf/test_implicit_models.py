from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from recsys_core.cf import backend
from recsys_core.cf.implicit_models import (
    ALS,
    BPR,
    ALSConfig,
    BPRConfig,
    ItemKNN,
    ItemKNNBM25,
    ItemKNNConfig,
)
from recsys_core.scoring import Scorer, TrainOptions
from tests.scorer_contract import ScorerContract, checkerboard

ROOT = Path(__file__).resolve().parents[2]


class TestALSContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return ALS(ALSConfig(factors=8, iterations=10))


class TestBPRContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return BPR(BPRConfig(factors=8, learning_rate=0.05, iterations=200))


class TestItemKNNCosineContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return ItemKNN(ItemKNNConfig(similarity="cosine", k=20))


class TestItemKNNBM25Contract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return ItemKNN(ItemKNNConfig(similarity="bm25", k=20))


class TestItemKNNBM25SourceContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return ItemKNNBM25()


def test_bm25_source_is_the_bm25_variant_of_itemknn() -> None:
    board = checkerboard()
    source = ItemKNNBM25().train(board.data)
    same = ItemKNN(ItemKNNConfig(similarity="bm25")).train(board.data)
    assert source.name == "itemknn_bm25" and source.config.similarity == "bm25"
    assert ItemKNNBM25.config_class().model_validate({}).similarity == "bm25"
    np.testing.assert_array_equal(source.similarity.toarray(), same.similarity.toarray())


def test_als_factors_are_numpy_copies_and_scores_are_their_products() -> None:
    board = checkerboard()
    model = ALS(ALSConfig(factors=8)).train(board.data, TrainOptions(seed=1))
    for factors in (model.user_factors, model.item_factors):
        assert type(factors) is np.ndarray and factors.dtype == np.float32
    assert model.user_factors.shape == (board.data.n_users, 8)
    assert model.item_factors.shape == (board.data.n_items, 8)
    users = board.data.users.ids
    expected = model.user_factors @ model.item_factors.T
    np.testing.assert_allclose(model.score(users).values, expected, rtol=1e-6)
    assert not any(type(v).__module__.startswith("implicit") for v in vars(model).values())


def test_saved_als_loads_and_scores_without_implicit(tmp_path: Path) -> None:
    board = checkerboard()
    model = ALS(ALSConfig(factors=8)).train(board.data)
    blob = pickle.dumps(model)
    assert b"implicit." not in blob
    path = tmp_path / "als.pkl"
    path.write_bytes(blob)
    expected = tmp_path / "expected.npy"
    np.save(expected, model.score(["u0", "u30"]).values)
    script = (
        "import sys, pickle, numpy as np\n"
        "sys.modules['implicit'] = None  # any import of implicit now fails\n"
        f"m = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "values = m.score(['u0', 'u30']).values\n"
        f"np.testing.assert_array_equal(values, np.load({str(expected)!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_cold_items_and_users_score_nan() -> None:
    board = checkerboard(cold=True)
    for model in (ALS(ALSConfig(factors=8)), BPR(BPRConfig(factors=8, iterations=5)),
                  ItemKNN()):
        values = model.train(board.data).score([board.cold_user, "u0"]).values
        assert np.isnan(values[0]).all(), model.name
        assert np.isnan(values[1, -1]) and np.isfinite(values[1, :-1]).all(), model.name


def test_training_is_quiet_and_leaves_blas_threads_alone() -> None:
    before = [api["num_threads"] for api in threadpoolctl.threadpool_info()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for model in (ALS(ALSConfig(factors=4, iterations=2)),
                      BPR(BPRConfig(factors=4, iterations=2)),
                      ItemKNN(ItemKNNConfig(similarity="bm25"))):
            model.train(checkerboard().data)
    assert not caught, [str(w.message) for w in caught]
    assert [api["num_threads"] for api in threadpoolctl.threadpool_info()] == before


def test_itemknn_scores_are_user_rows_times_sparse_similarity() -> None:
    board = checkerboard()
    model = ItemKNN(ItemKNNConfig(k=5)).train(board.data)
    assert np.diff(model.similarity.indptr).max() <= 5
    expected = (board.data.matrix[[0, 21]] @ model.similarity).toarray()
    np.testing.assert_allclose(model.score(["u0", "u21"]).values, expected, rtol=1e-6)


def test_seed_changes_factors() -> None:
    data = checkerboard().data
    a = ALS(ALSConfig(factors=8)).train(data, TrainOptions(seed=1)).item_factors
    b = ALS(ALSConfig(factors=8)).train(data, TrainOptions(seed=2)).item_factors
    assert not np.array_equal(a, b)


def test_to_numpy_copies_gpu_style_matrices() -> None:
    class FakeGpuMatrix:
        def to_numpy(self) -> np.ndarray:
            return np.ones((2, 3), dtype=np.float64)

    out = backend.to_numpy(FakeGpuMatrix())
    assert out.dtype == np.float32 and out.shape == (2, 3)


def test_cuda_request_without_cuda_falls_back_to_the_same_cpu_model() -> None:
    if backend.use_gpu("cuda"):
        pytest.skip("implicit has CUDA here")
    data = checkerboard().data
    cpu = ALS(ALSConfig(factors=8)).train(data, TrainOptions(seed=1, device="cpu"))
    cuda = ALS(ALSConfig(factors=8)).train(data, TrainOptions(seed=1, device="cuda"))
    np.testing.assert_array_equal(cpu.item_factors, cuda.item_factors)


@pytest.mark.gpu
def test_gpu_factors_come_back_as_numpy() -> None:
    if not backend.use_gpu("cuda"):
        pytest.skip("implicit has no CUDA here")
    data = checkerboard().data
    for model in (ALS(ALSConfig(factors=8)), BPR(BPRConfig(factors=8, iterations=5))):
        model.train(data, TrainOptions(seed=1, device="cuda"))
        assert type(model.item_factors) is np.ndarray
        assert b"implicit." not in pickle.dumps(model)
