from __future__ import annotations

import warnings

import numpy as np
import pytest

from recsys_core.fusion.normalise import normalise

NAN = np.nan
SQ = np.sqrt(1.5)  # z-score of 1, 2, 3 (population sd sqrt(2/3)): -sqrt(3/2), 0, sqrt(3/2)


def check(values: list[list[float]], method: str, expected: list[list[float]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on NaN or constant rows
        out = normalise(np.array(values, dtype=np.float32), method)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array(expected, dtype=np.float32), rtol=1e-6, atol=1e-6)


def test_zscore_by_hand() -> None:
    check([[1, 2, 3, NAN], [10, NAN, 30, 20], [2, 4, 6, 8]], "zscore",
          [[-SQ, 0, SQ, NAN], [-SQ, NAN, SQ, 0],
           [-3 / np.sqrt(5), -1 / np.sqrt(5), 1 / np.sqrt(5), 3 / np.sqrt(5)]])


def test_rank_by_hand() -> None:
    # percentile among the finite entries only; NaN does not take a rank
    check([[30, 10, NAN, 20], [NAN, 7, NAN, 3], [5, 5, 1, NAN]], "rank",
          [[1, 0, NAN, 0.5], [NAN, 1, NAN, 0], [0.5, 1, 0, NAN]])


def test_minmax_by_hand() -> None:
    check([[2, 4, NAN, 6], [-1, NAN, 1, 0]], "minmax", [[0, 0.5, NAN, 1], [0, NAN, 1, 0.5]])


@pytest.mark.parametrize("method", ["zscore", "rank", "minmax"])
def test_all_nan_row_stays_nan_and_leaves_other_rows_alone(method: str) -> None:
    values = np.array([[NAN, NAN, NAN], [1, 2, 3]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = normalise(values, method)
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[1], normalise(values[1:], method)[0])
    assert np.isfinite(out[1]).all()


@pytest.mark.parametrize(("method", "expected"), [
    ("zscore", [0, 0, 0, NAN]),
    ("minmax", [0, 0, 0, NAN]),
    ("rank", [0, 0.5, 1, NAN]),  # ties broken by position
])
def test_constant_row(method: str, expected: list[float]) -> None:
    check([[4, 4, 4, NAN]], method, [expected])


@pytest.mark.parametrize("method", ["zscore", "rank", "minmax"])
def test_single_finite_entry_is_finite(method: str) -> None:
    out = normalise(np.array([[NAN, 3.0, NAN]], dtype=np.float32), method)
    assert np.isnan(out[0, [0, 2]]).all()
    assert out[0, 1] == 0.0


def test_infinite_entries_count_as_missing() -> None:
    check([[np.inf, 1, 3], [-np.inf, 1, 3]], "zscore", [[NAN, -1, 1], [NAN, -1, 1]])
    check([[np.inf, 1, 3]], "rank", [[NAN, 0, 1]])


@pytest.mark.parametrize("method", ["zscore", "rank", "minmax"])
def test_rows_are_independent_and_input_untouched(method: str) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(6, 9)).astype(np.float32) * rng.uniform(1, 100, size=(6, 1))
    values[rng.random(values.shape) < 0.3] = NAN
    before = values.copy()
    whole = normalise(values, method)
    np.testing.assert_array_equal(values, before)
    for r in range(len(values)):
        np.testing.assert_allclose(whole[r], normalise(values[r:r + 1], method)[0], atol=1e-6)
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(values))


@pytest.mark.parametrize("method", ["zscore", "rank", "minmax"])
def test_invariant_to_per_user_affine_rescaling(method: str) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(4, 7))
    scaled = values * np.array([[2.0], [10.0], [0.5], [3.0]]) + np.array([[1], [-4], [7], [0]])
    np.testing.assert_allclose(normalise(values, method), normalise(scaled, method), atol=1e-5)


def test_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="unknown normaliser"):
        normalise(np.ones((1, 2)), "softmax")  # type: ignore[arg-type]
