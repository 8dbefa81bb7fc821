from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep.user_encoder import UserEncoder, UserEncoderConfig
from recsys_core.scoring import Scorer, TrainOptions
from tests.scorer_contract import ScorerContract, checkerboard

SMALL = UserEncoderConfig(hidden=32, epochs=15, batch_size=16, lr=1e-2, negatives=32)


class TestUserEncoderContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return UserEncoder(SMALL)


def cycle_walks(n_users: int = 200, n_items: int = 40, steps: int = 12, dim: int = 64,
                seed: int = 0) -> tuple[InteractionData, InteractionData, np.ndarray]:
    """Users walk a hidden cycle over the items; the next item is always the successor.

    Returns the training data (first ``steps`` items of each walk, in time order), a
    validation set (each user's next item) and each user's item after that (test).
    """
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(n_items)
    starts = rng.integers(0, n_items, n_users)
    walks = cycle[(starts[:, None] + np.arange(steps + 2)) % n_items]
    rows = np.repeat(np.arange(n_users), steps)
    shape = (n_users, n_items)
    matrix = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, walks[:, :steps].ravel())),
                           shape=shape)
    times = sp.csr_matrix((np.tile(np.arange(1.0, steps + 1), n_users),
                           (rows, walks[:, :steps].ravel())), shape=shape)
    embeddings = rng.standard_normal((n_items, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    users = Vocabulary(f"u{u}" for u in range(n_users))
    items = Vocabulary(f"i{i}" for i in range(n_items))
    data = InteractionData(matrix, users, items, times, embeddings)
    valid = data.with_matrix(sp.csr_matrix(
        (np.ones(n_users, np.float32), (np.arange(n_users), walks[:, steps])), shape=shape))
    return data, valid, walks[:, steps + 1]


def hit_rate(values: np.ndarray, data: InteractionData, truth: np.ndarray, k: int = 5) -> float:
    values = values.copy()
    values[data.matrix.toarray() > 0] = -np.inf
    top = np.argsort(-values, axis=1)[:, :k]
    return float(np.mean([truth[u] in top[u] for u in range(len(truth))]))


def test_learns_a_sequential_pattern_far_better_than_random() -> None:
    data, valid, _ = cycle_walks()
    model = UserEncoder(SMALL.model_copy(update={"epochs": 30})).train(data, TrainOptions(seed=1))
    values = model.score(data.users.ids).values
    next_items = valid.matrix.indices  # one per user, rows in order
    unseen = data.n_items - 12
    random_hit = 5 / unseen
    assert hit_rate(values, data, next_items) > max(0.8, 3 * random_hit)


def test_early_stops_on_validation_and_keeps_the_best_epoch() -> None:
    data, valid, _ = cycle_walks()
    config = SMALL.model_copy(update={"epochs": 30, "patience": 2, "eval_k": 5,
                                      "early_stopping": "validation"})
    model = UserEncoder(config).train(data, TrainOptions(seed=1, validation=valid))
    values = model.score(data.users.ids).values
    assert hit_rate(values, data, valid.matrix.indices) > 0.8


def test_validation_must_share_vocabularies() -> None:
    data, valid, _ = cycle_walks(n_users=20)
    other = InteractionData(valid.matrix, Vocabulary(f"x{u}" for u in range(20)), valid.items)
    config = SMALL.model_copy(update={"early_stopping": "validation"})
    with pytest.raises(ValueError, match="vocabularies"):
        UserEncoder(config).train(data, TrainOptions(validation=other))


def test_holdout_early_stopping_ignores_the_given_validation() -> None:
    """Trained with or without the tuner's validation split, the encoder comes out the same.

    The fusion tuner scores a model trained on the tuning part against that split, and the
    final model is trained without it, so the holdout is carved from the training data.
    """
    data, valid, _ = cycle_walks(n_users=60)
    config = SMALL.model_copy(update={"epochs": 6, "patience": 1, "eval_k": 5})
    assert config.early_stopping == "holdout"
    alone = UserEncoder(config).train(data, TrainOptions(seed=3))
    given = UserEncoder(config).train(data, TrainOptions(seed=3, validation=valid))
    np.testing.assert_array_equal(alone.score(data.users.ids).values,
                                  given.score(data.users.ids).values)
    by_validation = UserEncoder(config.model_copy(update={"early_stopping": "validation"})
                                ).train(data, TrainOptions(seed=3, validation=valid))
    assert not np.array_equal(alone.score(data.users.ids).values,
                              by_validation.score(data.users.ids).values)


def test_cold_items_score_finite_and_cold_users_nan() -> None:
    board = checkerboard(cold=True)
    values = UserEncoder(SMALL).train(board.data).score([board.cold_user, "u0"]).values
    assert np.isnan(values[0]).all()
    assert np.isfinite(values[1]).all()


def test_sequences_without_times_use_matrix_order() -> None:
    data, _, _ = cycle_walks(n_users=30)
    untimed = InteractionData(data.matrix, data.users, data.items, None, data.item_embeddings)
    values = UserEncoder(SMALL).train(untimed).score(["u0"]).values
    assert values.shape == (1, data.n_items) and np.isfinite(values).all()
