from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_core.cf.implicit_models import ALS, ALSConfig
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep.projector import ContentProjector, ContentProjectorConfig
from recsys_core.scoring import Scorer, TrainOptions
from tests.scorer_contract import ScorerContract, checkerboard

ALS_SMALL = ALSConfig(factors=8, iterations=10)
SMALL = ContentProjectorConfig(als=ALS_SMALL, hidden=32, max_epochs=100)


class TestContentProjectorContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return ContentProjector(SMALL)


def _with_cold_twins(n_twins: int = 8) -> tuple[InteractionData, list[int], list[int]]:
    """The checkerboard plus cold copies (same text embedding) of some warm items."""
    data = checkerboard().data
    originals = list(range(0, data.n_items, data.n_items // n_twins))[:n_twins]
    ids = [*data.items.ids, *[f"twin-{i}" for i in originals]]
    matrix = sp.csr_matrix((data.matrix.data, data.matrix.indices, data.matrix.indptr),
                           shape=(data.n_users, len(ids)))
    embeddings = np.vstack([data.item_embeddings, data.item_embeddings[originals]])
    twins = list(range(data.n_items, len(ids)))
    return InteractionData(matrix, data.users, Vocabulary(ids), None, embeddings), originals, twins


def test_cold_items_get_finite_scores_that_track_their_warm_twins() -> None:
    data, originals, twins = _with_cold_twins()
    model = ContentProjector(SMALL).train(data, TrainOptions(seed=3))
    values = model.score(data.users.ids).values
    cold = values[:, twins]
    assert np.isfinite(cold).all()
    assert cold.std() > 1e-3  # not a constant fallback
    warm = values[:, originals]
    for column in range(len(twins)):
        assert np.corrcoef(cold[:, column], warm[:, column])[0, 1] > 0.9
    # and over all (user, twin) pairs jointly
    assert np.corrcoef(cold.ravel(), warm.ravel())[0, 1] > 0.95


def test_pure_als_scores_where_items_are_warm() -> None:
    board = checkerboard()
    model = ContentProjector(SMALL).train(board.data, TrainOptions(seed=3))
    als = ALS(ALS_SMALL).train(board.data, TrainOptions(seed=3))
    users = board.data.users.ids
    np.testing.assert_allclose(model.score(users).values, als.score(users).values, rtol=1e-6)


def test_reuses_a_trained_als() -> None:
    board = checkerboard()
    als = ALS(ALS_SMALL).train(board.data, TrainOptions(seed=99))
    model = ContentProjector(SMALL, als=als).train(board.data, TrainOptions(seed=3))
    assert model.als is als
    np.testing.assert_array_equal(model.item_factors, als.item_factors)


def test_rejects_an_als_with_another_config() -> None:
    with pytest.raises(ValueError, match="different config"):
        ContentProjector(SMALL, als=ALS(ALSConfig(factors=3)))


@pytest.mark.parametrize("mode", ["projected", "blend"])
def test_warm_item_modes_use_the_projection(mode: str) -> None:
    board = checkerboard()
    config = SMALL.model_copy(update={"warm_items": mode, "blend": 0.25})
    model = ContentProjector(config).train(board.data, TrainOptions(seed=3))
    als = model.als.item_factors
    expected = model.projected if mode == "projected" else 0.25 * als + 0.75 * model.projected
    np.testing.assert_allclose(model.item_factors, expected, rtol=1e-6)
    ranks = np.argsort(-model.score(["u0"]).values[0])
    assert set(ranks[:10]) <= set(range(20))  # still recommends the user's half


def test_cosine_loss_trains() -> None:
    board = checkerboard(cold=True)
    config = SMALL.model_copy(update={"loss": "cosine"})
    values = ContentProjector(config).train(board.data).score(["u0"]).values
    assert np.isfinite(values).all()


def test_needs_embeddings() -> None:
    data = checkerboard().data
    bare = InteractionData(data.matrix, data.users, data.items)
    with pytest.raises(ValueError, match="item_embeddings"):
        ContentProjector(SMALL).train(bare)


def test_an_epoch_draws_at_most_epoch_items(monkeypatch) -> None:
    steps: list[int] = []
    step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step",
                        lambda self, *a, **kw: steps.append(1) or step(self, *a, **kw))
    data = checkerboard().data
    assert data.n_items > 16  # more warm items than one epoch draws
    config = SMALL.model_copy(update={"max_epochs": 3, "epoch_items": 8, "batch_size": 4,
                                      "patience": 10})
    ContentProjector(config).train(data, TrainOptions(seed=3))
    assert len(steps) == 3 * 2
