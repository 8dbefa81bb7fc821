"""The contract every scorer meets, and the checkerboard fixture with a known answer.

A source's test module subclasses ``ScorerContract`` and implements ``make_scorer()``::

    class TestALS(ScorerContract):
        def make_scorer(self) -> Scorer:
            return ALS(ALSConfig(factors=8))
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.scoring import Scorer, TrainOptions

SEED = 7


@dataclass(frozen=True)
class Checkerboard:
    """Checkerboard data and its known answer.

    Args:
        data: the training data (with times and item embeddings).
        withheld: user ID -> the one item of the user's half left out of training.
        cold_user: an ID in the vocabulary with no interactions (``None`` unless asked).
        cold_item: an ID in the vocabulary with no interactions (``None`` unless asked).
    """

    data: InteractionData
    withheld: dict[str, str]
    cold_user: str | None = None
    cold_item: str | None = None


def checkerboard(users_per_group: int = 20, items_per_group: int = 20, dim: int = 16,
                 noise: float = 0.1, cold: bool = False, seed: int = 0) -> Checkerboard:
    """Two groups of users, each liking one half of the items, one item per user withheld.

    User ``u`` of group ``g`` interacts with every item of half ``g`` except item
    ``u % items_per_group`` of that half, in a random time order. Among the user's unseen
    items only the withheld one belongs to the user's half, so every sensible source must
    rank it first (as in implicit's own tests). Item embeddings are the half's one-hot plus
    Gaussian noise, unit-normalised, so text-based sources see the two groups too.

    Args:
        users_per_group: users in each group.
        items_per_group: items in each half.
        dim: embedding width (at least 3).
        noise: noise scale on the embeddings.
        cold: add one user and one item with no interactions (the item's embedding is a
            third, unrelated topic).
        seed: seed for the order and the noise.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = 2 * users_per_group, 2 * items_per_group
    rows, cols, withheld = [], [], {}
    for user in range(n_users):
        group = user // users_per_group
        half = np.arange(group * items_per_group, (group + 1) * items_per_group)
        out = half[user % items_per_group]
        liked = rng.permutation(half[half != out])
        rows += [user] * len(liked)
        cols += liked.tolist()
        withheld[f"u{user}"] = f"i{out}"
    groups = np.repeat([0, 1], items_per_group)
    embeddings = np.eye(dim, dtype=np.float32)[groups]
    embeddings += noise * rng.standard_normal(embeddings.shape).astype(np.float32)
    user_ids = [f"u{u}" for u in range(n_users)]
    item_ids = [f"i{i}" for i in range(n_items)]
    if cold:
        user_ids.append("u-cold")
        item_ids.append("i-cold")
        embeddings = np.vstack([embeddings, np.eye(dim, dtype=np.float32)[2]])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    shape = (len(user_ids), len(item_ids))
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    # Times rise in the permuted order within each user: the order is random per user.
    times = sp.csr_matrix((1.6e9 + np.arange(len(rows), dtype=np.float64), (rows, cols)),
                          shape=shape)
    matrix.sort_indices()
    times.sort_indices()
    data = InteractionData(matrix, Vocabulary(user_ids), Vocabulary(item_ids), times,
                           embeddings.astype(np.float32))
    return Checkerboard(data, withheld, "u-cold" if cold else None, "i-cold" if cold else None)


def withheld_rank(board: Checkerboard, values: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of each user's withheld item among the user's unseen items.

    Ties count against the withheld item, and NaN scores rank last.

    Args:
        board: the fixture.
        values: scores for ``board.withheld``'s users, in its order, over all items.
    """
    data = board.data
    ranks = []
    for row, (user, item) in enumerate(board.withheld.items()):
        scores = np.where(np.isfinite(values[row]), values[row], -np.inf)
        target = data.items.index([item])[0]
        others = np.ones(data.n_items, dtype=bool)
        others[data.matrix[data.users.index([user])[0]].indices] = False
        others[target] = False
        ranks.append(int(np.sum(scores[others] >= scores[target])))
    return np.array(ranks)


class ScorerContract:
    """Checks every source passes; subclass and implement ``make_scorer``."""

    #: whether the source personalises (MostPop does not, so it cannot pass the checkerboard).
    personalised: ClassVar[bool] = True

    def make_scorer(self) -> Scorer:
        """An untrained scorer configured for the small fixtures."""
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def board(self) -> Checkerboard:
        return checkerboard()

    @pytest.fixture(scope="class")
    def trained(self, board: Checkerboard) -> Scorer:
        return self.make_scorer().train(board.data, TrainOptions(seed=SEED))

    def test_has_a_name(self) -> None:
        assert isinstance(type(self.make_scorer()).name, str) and type(self.make_scorer()).name

    def test_config_round_trips(self) -> None:
        config = self.make_scorer().config
        assert type(config).model_validate(config.model_dump()) == config
        assert type(config).model_validate_json(config.model_dump_json()) == config

    def test_config_is_frozen(self) -> None:
        config = self.make_scorer().config
        field = next(iter(type(config).model_fields), None)
        if field is None:
            pytest.skip("config has no fields")
        with pytest.raises(ValidationError):
            setattr(config, field, getattr(config, field))

    def test_untrained_score_raises(self) -> None:
        scorer = self.make_scorer()
        assert not scorer.is_trained()
        with pytest.raises(RuntimeError):
            scorer.score(["u0"])

    def test_scores_shape(self, trained: Scorer, board: Checkerboard) -> None:
        assert trained.is_trained()
        users = board.data.users.ids[:5]
        scores = trained.score(users)
        assert scores.values.shape == (5, board.data.n_items)
        assert scores.values.dtype == np.float32
        assert scores.items == board.data.items
        assert list(scores.users) == list(users)
        assert np.isfinite(scores.values).all()

    def test_item_subset(self, trained: Scorer, board: Checkerboard) -> None:
        full = trained.score(["u0", "u25"]).values
        part = trained.score(["u0", "u25"], items=["i3", "i0", "no-such-item"]).values
        assert part.shape == (2, 3)
        np.testing.assert_array_equal(part[:, :2], full[:, [3, 0]])
        assert np.isnan(part[:, 2]).all()

    def test_unknown_user_scores_nan(self, trained: Scorer) -> None:
        values = trained.score(["no-such-user", "u1"]).values
        assert np.isnan(values[0]).all()
        assert np.isfinite(values[1]).any()

    def test_pickle_round_trip(self, trained: Scorer, board: Checkerboard) -> None:
        loaded = pickle.loads(pickle.dumps(trained))
        users = board.data.users.ids
        assert loaded.config == trained.config
        np.testing.assert_array_equal(loaded.score(users).values, trained.score(users).values)

    def test_same_seed_same_scores(self, trained: Scorer, board: Checkerboard) -> None:
        again = self.make_scorer().train(board.data, TrainOptions(seed=SEED))
        users = board.data.users.ids
        np.testing.assert_array_equal(again.score(users).values, trained.score(users).values)

    def test_checkerboard_withheld_item_ranks_first(self, trained: Scorer,
                                                    board: Checkerboard) -> None:
        if not self.personalised:
            pytest.skip(f"{type(trained).__name__} does not personalise")
        values = trained.score(list(board.withheld)).values
        ranks = withheld_rank(board, values)
        assert (ranks == 0).all(), f"withheld item not first for users {np.flatnonzero(ranks)}"

    def test_cold_user_and_item(self) -> None:
        board = checkerboard(cold=True)
        scorer = self.make_scorer().train(board.data, TrainOptions(seed=SEED))
        values = scorer.score([board.cold_user, "u0"]).values
        cold_row = values[0]
        assert np.isnan(cold_row).all() or np.isfinite(cold_row).all()
        assert np.isfinite(values[1, :-1]).all()

    def test_without_users_forgets_them_and_keeps_the_others(self) -> None:
        board = checkerboard(users_per_group=12, items_per_group=10)  # 24 users, 20 items
        scorer = self.make_scorer().train(board.data, TrainOptions(seed=SEED))
        kept = scorer.without_users(["u0", "u13", "nobody"])
        assert kept is not None
        assert "u0" not in kept.users and "u13" not in kept.users
        assert len(kept.users) == len(board.data.users) - 2
        assert np.isnan(kept.score(["u0", "u13"]).values).all()
        others = [u for u in board.data.users.ids if u not in ("u0", "u13")]
        np.testing.assert_array_equal(kept.score(others).values, scorer.score(others).values)
        np.testing.assert_array_equal(kept.fold_in([["i1", "i2"]]).values,
                                      scorer.fold_in([["i1", "i2"]]).values)
        assert b"\x8c\x03u13" not in pickle.dumps(kept)  # the id itself is gone
        assert "u13" in scorer.users  # the original is left as it was
