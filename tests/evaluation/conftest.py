"""Fixtures for evaluation tests: small interaction frames and fixed-score scorers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys_core.data import schema as S
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class FixedConfig(ScorerConfig):
    tag: str = "fixed"


class FixedScorer(Scorer[FixedConfig]):
    """Returns rows of a fixed users x items matrix; records the batch sizes it was asked for."""

    name = "fixed"

    def __init__(self, values: np.ndarray) -> None:
        super().__init__(FixedConfig())
        self.values = np.asarray(values, dtype=np.float32)
        self.calls: list[int] = []

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        assert self.values.shape == (data.n_users, data.n_items)

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        self.calls.append(len(user_index))
        return self.values[user_index].copy()


class CoocScorer(Scorer[FixedConfig]):
    """Item co-occurrence scores X (X^T X): the checkerboard's known answer."""

    name = "cooc"

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        x = (data.matrix > 0).astype(np.float32)
        self._x = x
        self._c = (x.T @ x).toarray()

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(self._x[user_index] @ self._c)


def make_frame(rows: list[tuple[str, str, int]] | list[tuple[str, str, int, float]]
               ) -> pl.DataFrame:
    """Canonical interactions from (user, item, day[, weight]) tuples."""
    records = [
        {S.USER_ID: r[0], S.ITEM_ID: r[1], S.TS: EPOCH + dt.timedelta(days=r[2]),
         S.WEIGHT: r[3] if len(r) > 3 else 1.0, S.EVENT: f"e{r[2]}"}
        for r in rows
    ]
    return S.conform(pl.DataFrame(records), S.INTERACTIONS_SCHEMA)


def make_data(n_users: int, n_items: int, pairs: list[tuple[int, int]]) -> InteractionData:
    """InteractionData over u0.., i0.. vocabularies with weight-1 (user, item) index pairs."""
    users = Vocabulary(f"u{u}" for u in range(n_users))
    items = Vocabulary(f"i{i}" for i in range(n_items))
    rows = np.array([p[0] for p in pairs], dtype=np.int64)
    cols = np.array([p[1] for p in pairs], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)),
                           shape=(n_users, n_items))
    return InteractionData(matrix, users, items)


@pytest.fixture
def frame_factory() -> Callable[..., pl.DataFrame]:
    return make_frame


@pytest.fixture
def data_factory() -> Callable[..., InteractionData]:
    return make_data


@pytest.fixture
def fixed_scorer() -> Callable[[np.ndarray, InteractionData], FixedScorer]:
    def build(values: np.ndarray, train: InteractionData) -> FixedScorer:
        return FixedScorer(values).train(train)  # type: ignore[return-value]

    return build


@pytest.fixture
def cooc_scorer() -> Callable[[InteractionData], CoocScorer]:
    def build(train: InteractionData) -> CoocScorer:
        return CoocScorer(FixedConfig()).train(train)  # type: ignore[return-value]

    return build


@pytest.fixture
def random_frame() -> pl.DataFrame:
    """60 users with 1..25 interactions on 80 items over 100 days, with repeated pairs."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(60):
        n = int(rng.integers(1, 26))
        items = rng.choice(80, size=n, replace=False)
        days = rng.integers(0, 100, size=n)
        rows += [(f"u{u}", f"i{i}", int(d), float(rng.integers(1, 4))) for i, d in zip(items, days,
                                                                                       strict=True)]
        if n > 3:  # repeat a pair later: dedup must keep one row
            rows.append((f"u{u}", f"i{items[0]}", int(days[0]) + 50, 1.0))
    return make_frame(rows)
