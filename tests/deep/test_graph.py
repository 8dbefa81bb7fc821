from __future__ import annotations

import numpy as np
import pytest

from recsys_core.deep.graph import LMGraph, LMGraphConfig
from recsys_core.scoring import Scorer, TrainOptions
from tests.deep.test_user_encoder import _with_cold_twins, cycle_walks
from tests.scorer_contract import ScorerContract, checkerboard, withheld_rank

SMALL = LMGraphConfig(dim=16, hidden=32, epochs=30, batch_size=64, lr=5e-3, negatives=16)


class TestLMGraphContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return LMGraph(SMALL)


def test_scores_a_new_item_from_its_text_without_retraining() -> None:
    data, originals, twins = _with_cold_twins()
    values = LMGraph(SMALL).train(data, TrainOptions(seed=3)).score(data.users.ids).values
    cold = values[:, twins]
    assert np.isfinite(cold).all()
    group = np.arange(data.n_users) >= 20  # users 0-19 like items 0-19, users 20-39 the rest
    twin_group = np.array(originals) >= 20
    assert (twin_group[cold.argmax(axis=1)] == group).all()
    assert np.corrcoef(cold.ravel(), values[:, originals].ravel())[0, 1] > 0.9


def test_an_item_with_no_edges_is_scored_on_the_warm_items_scale() -> None:
    """A cold copy of a warm item (same text) takes the hops of its nearest warm item, its
    twin: it scores as the twin does, not below every warm item as its mapped text alone."""
    data, originals, twins = _with_cold_twins()
    config = SMALL.model_copy(update={"cold_neighbours": 1})
    values = LMGraph(config).train(data, TrainOptions(seed=3)).score(data.users.ids).values
    np.testing.assert_allclose(values[:, twins], values[:, originals], atol=1e-5)


def test_folds_in_a_new_user_without_retraining() -> None:
    board = checkerboard()
    model = LMGraph(SMALL).train(board.data, TrainOptions(seed=3))
    # Two users the model never saw: one touched items of the first half, one of the second.
    folded = model.fold_in([["i0", "i1", "i2", "i3"], ["i25", "i26", "i30"]]).values
    assert np.isfinite(folded).all()
    for row, half in enumerate((range(0, 20), range(20, 40))):
        seen = [0, 1, 2, 3] if row == 0 else [25, 26, 30]
        ranked = [i for i in np.argsort(-folded[row]) if i not in seen]
        assert set(ranked[:10]) <= set(half)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_learns_the_withheld_items_in_either_precision(precision: str) -> None:
    """bfloat16 products (the MLP's, while training) learn what float32 ones do."""
    board = checkerboard()
    config = SMALL.model_copy(update={"precision": precision})
    model = LMGraph(config).train(board.data, TrainOptions(seed=3))
    assert model.item_vectors.dtype == model.user_vectors.dtype == np.float32
    assert (withheld_rank(board, model.score(list(board.withheld)).values) == 0).all()


def test_fold_in_of_own_history_ranks_like_the_trained_user() -> None:
    board = checkerboard()
    model = LMGraph(SMALL).train(board.data, TrainOptions(seed=3))
    users = list(board.withheld)
    histories = [list(board.data.items.id(board.data.sequence(u))) for u in range(len(users))]
    folded = model.fold_in(histories).values
    assert (withheld_rank(board, folded) == 0).all()
    trained = model.score(users).values
    cosine = (folded * trained).sum(1) / (np.linalg.norm(folded, axis=1)
                                          * np.linalg.norm(trained, axis=1))
    assert cosine.min() > 0.9


def test_warm_start_continues_from_a_model_trained_on_less() -> None:
    data, _ = cycle_walks()  # random text: only training places the items
    first = LMGraph(SMALL).train(data, TrainOptions(seed=3))
    one_step = SMALL.model_copy(update={"epochs": 1, "eval_users": 0, "lr": 1e-5})
    warm = LMGraph(one_step)
    assert warm.warm_start(first)
    warm.train(data, TrainOptions(seed=4))
    cold = LMGraph(one_step).train(data, TrainOptions(seed=4))
    users = data.users.ids

    def agreement(model: LMGraph) -> float:
        return float(np.corrcoef(model.score(users).values.ravel(),
                                 first.score(users).values.ravel())[0, 1])

    assert agreement(warm) > 0.99 > agreement(cold) + 0.1
