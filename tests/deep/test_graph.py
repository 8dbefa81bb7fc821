from __future__ import annotations

import numpy as np

from recsys_core.deep.graph import LMGraph, LMGraphConfig
from recsys_core.scoring import Scorer, TrainOptions
from tests.deep.test_user_encoder import _with_cold_twins
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


def test_untimed_holdout_is_a_random_item_not_the_highest_index() -> None:
    """Without times, matrix order is item order: the holdout must not always take the
    user's highest item index."""
    import torch

    from recsys_core.deep.graph import _ordered

    data = checkerboard().data
    untimed = type(data)(data.matrix, data.users, data.items, None, data.item_embeddings)
    last = [s[-1] for s in _ordered(untimed, torch.Generator().manual_seed(0))]
    highest = [data.matrix[u].indices.max() for u in range(data.n_users)]
    assert np.mean(np.array(last) == np.array(highest)) < 0.3
    timed = [s[-1] for s in _ordered(data, torch.Generator().manual_seed(0))]
    assert timed == [data.sequence(u)[-1] for u in range(data.n_users)]


def test_warm_start_continues_from_a_model_trained_on_less() -> None:
    board = checkerboard()
    first = LMGraph(SMALL).train(board.data, TrainOptions(seed=3))
    one_epoch = SMALL.model_copy(update={"epochs": 1, "eval_users": 0, "lr": 1e-4})
    warm = LMGraph(one_epoch)
    assert warm.warm_start(first)
    warm.train(board.data, TrainOptions(seed=4))
    cold = LMGraph(one_epoch).train(board.data, TrainOptions(seed=4))
    users = list(board.withheld)
    assert (withheld_rank(board, warm.score(users).values) == 0).all()
    assert (withheld_rank(board, cold.score(users).values) == 0).mean() < 0.9
