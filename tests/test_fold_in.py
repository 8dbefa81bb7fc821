"""Fold-in: every source scores a pseudo-user from a list of items (recsys_core.scoring)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from recsys_core.cf.ease import EASE, EASEConfig
from recsys_core.cf.fold_in import als_gram, als_user_factors
from recsys_core.cf.implicit_models import ALS, BPR, ALSConfig, BPRConfig, ItemKNN
from recsys_core.cf.popular import MostPop
from recsys_core.deep.graph import LMGraph, LMGraphConfig
from recsys_core.deep.projector import ContentProjector, ContentProjectorConfig
from recsys_core.deep.text_similarity import TextSimilarity, TextSimilarityConfig
from recsys_core.deep.user_encoder import UserEncoder, UserEncoderConfig
from recsys_core.deep.user_history import UserHistory, UserHistoryConfig
from recsys_core.scoring import History, Scorer, TrainOptions
from tests.scorer_contract import Checkerboard, checkerboard, withheld_rank


@pytest.fixture(scope="module", autouse=True)
def single_threaded_torch():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def board() -> Checkerboard:
    return checkerboard(cold=True)


def make(name: str) -> Scorer:
    return {
        "als": lambda: ALS(ALSConfig(factors=8, iterations=15)),
        "itemknn": lambda: ItemKNN(),
        "ease": lambda: EASE(EASEConfig(l2=10.0)),
        "text": lambda: TextSimilarity(),
        "text_recency": lambda: TextSimilarity(TextSimilarityConfig(half_life=3.0)),
        "projector": lambda: ContentProjector(ContentProjectorConfig(
            als=ALSConfig(factors=8, iterations=15), hidden=16, max_epochs=30)),
        "user_encoder": lambda: UserEncoder(UserEncoderConfig(
            dim=32, blocks=1, max_len=20, text_hidden=32, epochs=15, batch_size=16, lr=1e-2)),
        "user_history": lambda: UserHistory(UserHistoryConfig(encoder=UserEncoderConfig(
            dim=32, blocks=1, max_len=20, text_hidden=32, epochs=15, batch_size=16, lr=1e-2))),
        "graph": lambda: LMGraph(LMGraphConfig(dim=16, hidden=32, epochs=30, batch_size=64,
                                               lr=5e-3, negatives=16)),
        "mostpop": lambda: MostPop(),
    }[name]()


@pytest.fixture(scope="module")
def trained(board: Checkerboard) -> dict[str, Scorer]:
    names = ["als", "itemknn", "ease", "text", "text_recency", "projector", "graph",
             "user_encoder", "user_history", "mostpop"]
    return {name: make(name).train(board.data, TrainOptions(seed=3)) for name in names}


def own_histories(board: Checkerboard, users: list[str]) -> History:
    """Each user's training items in time order, with their training weights."""
    data = board.data
    rows = data.users.index(users)
    sequences = [data.sequence(int(r)) for r in rows]
    weights = [np.asarray(data.matrix[int(r), s].toarray()).ravel()
               for r, s in zip(rows, sequences, strict=True)]
    return History.of(sequences, data.n_items, weights)


PERSONAL = ["als", "itemknn", "ease", "text", "text_recency", "projector", "graph",
            "user_encoder", "user_history"]


@pytest.mark.parametrize("name", PERSONAL)
def test_fold_in_of_own_history_ranks_withheld_item_first(board, trained, name) -> None:
    users = list(board.withheld)
    values = trained[name].fold_in_indices(own_histories(board, users))
    assert values.shape == (len(users), board.data.n_items) and values.dtype == np.float32
    assert (withheld_rank(board, values) == 0).mean() >= 0.9


@pytest.mark.parametrize("name", ["itemknn", "ease", "text", "text_recency", "user_encoder",
                                  "user_history", "mostpop"])
def test_fold_in_of_own_history_equals_trained_scores(board, trained, name) -> None:
    users = list(board.withheld)
    scorer = trained[name]
    folded = scorer.fold_in_indices(own_histories(board, users))
    np.testing.assert_allclose(folded, scorer.score(users).values, rtol=1e-4, atol=1e-4)


def test_als_fold_in_solves_the_user_step_of_training(board, trained) -> None:
    als = trained["als"]
    users = list(board.withheld)
    history = own_histories(board, users)
    folded = als.fold_in_factors(history.matrix)
    trained_factors = als.user_factors[board.data.users.index(users)]
    # implicit's last sweep solves users by 3 CG steps against the previous item factors:
    # close to, not exactly, the exact solve against the final ones.
    cosine = (folded * trained_factors).sum(1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(trained_factors, axis=1))
    assert cosine.min() > 0.95


def test_als_user_factors_match_a_direct_solve() -> None:
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(6, 3)).astype(np.float32)
    history = History.of([np.array([0, 2, 5])], 6, [np.array([1.0, 3.0, 2.0])])
    alpha, reg = 2.0, 0.1
    got = als_user_factors(factors, als_gram(factors, reg), history.matrix, alpha)[0]
    y = factors.astype(np.float64)
    c = np.zeros(6)
    c[[0, 2, 5]] = alpha * np.array([1.0, 3.0, 2.0])
    system = y.T @ y + reg * np.eye(3) + (y.T * np.where(c > 0, c - 1, 0)) @ y
    np.testing.assert_allclose(got, np.linalg.solve(system, y.T @ c), rtol=1e-5)


@pytest.mark.parametrize("name", PERSONAL)
def test_empty_history_scores_nan(board, trained, name) -> None:
    values = trained[name].fold_in_indices(History.of([np.array([], dtype=np.int64),
                                                       np.array([0])], board.data.n_items))
    assert np.isnan(values[0]).all()
    assert np.isfinite(values[1]).any()


def test_mostpop_folds_in_to_popularity(board, trained) -> None:
    values = trained["mostpop"].fold_in_indices(History.of([np.array([], np.int64)],
                                                           board.data.n_items))
    np.testing.assert_array_equal(values[0], trained["mostpop"].popularity)


def test_cold_items_cf_sources_cannot_score_content_sources_can(board, trained) -> None:
    data = board.data
    cold = data.items.index([board.cold_item])[0]
    some_user = own_histories(board, ["u0"])
    only_cold = History.of([np.array([cold])], data.n_items)
    for name in ("als", "itemknn", "ease"):
        assert np.isnan(trained[name].fold_in_indices(some_user)[0, cold])
        assert np.isnan(trained[name].fold_in_indices(only_cold)).all()
    for name in ("text", "projector", "graph", "user_encoder"):
        assert np.isfinite(trained[name].fold_in_indices(some_user)[0, cold])
        assert np.isfinite(trained[name].fold_in_indices(only_cold)).all()


def test_projector_history_reads_cold_items_through_their_projection(board, trained) -> None:
    data = board.data
    cold = data.items.index([board.cold_item])[0]
    base = own_histories(board, ["u0"])
    extended = History.of([np.append(base.sequences[0], cold)], data.n_items,
                          [np.append(base.weights[0], 1.0)])
    projector = trained["projector"]
    assert not np.allclose(projector.fold_in_indices(base), projector.fold_in_indices(extended))


def test_public_fold_in_takes_ids_and_ignores_unknown_ones(board, trained) -> None:
    scorer = trained["itemknn"]
    history = [["i1", "nope", "i2"], ["ghost"]]
    out = scorer.fold_in(history)
    assert list(out.users) == ["0", "1"] and out.items == board.data.items
    expected = scorer.fold_in_indices(History.of([np.array([1, 2])], board.data.n_items))
    np.testing.assert_array_equal(out.values[0], expected[0])
    assert np.isnan(out.values[1]).all()
    weighted = scorer.fold_in([["i1", "i2"]], weights=[[2.0, 0.5]]).values[0]
    assert not np.allclose(weighted, expected[0])


def test_a_source_without_fold_in_scores_nan(board) -> None:
    bpr = BPR(BPRConfig(factors=4, iterations=2)).train(board.data, TrainOptions(seed=1))
    values = bpr.fold_in_indices(own_histories(board, ["u0", "u1"]))
    assert values.shape == (2, board.data.n_items) and np.isnan(values).all()


def test_fold_in_needs_a_trained_scorer() -> None:
    with pytest.raises(RuntimeError, match="not trained"):
        ItemKNN().fold_in([["i1"]])


def test_history_sums_repeats_keeps_order_and_counts_ages() -> None:
    history = History.of([np.array([3, 1, 3, 0]), np.array([], dtype=np.int64)], 5,
                         [np.array([1.0, 2.0, 0.5, 1.0]), np.array([])])
    assert len(history) == 2 and history.matrix.shape == (2, 5)
    assert history.matrix[0].toarray().tolist() == [[1.0, 2.0, 0.0, 1.5, 0.0]]
    assert history.sequences[0].tolist() == [3, 1, 3, 0]
    # stored order is by item: 0 (newest, age 0), 1 (age 2), 3 (last seen second newest, 1)
    assert history.matrix.indices[:3].tolist() == [0, 1, 3]
    assert history.ages().tolist() == [0, 2, 1]


@pytest.mark.parametrize(("sequences", "weights", "message"), [
    ([np.array([0, 5])], None, "0..4"),
    ([np.array([-1])], None, "0..4"),
    ([np.array([0, 1])], [np.array([1.0])], "align"),
])
def test_history_rejects_bad_input(sequences, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        History.of(sequences, 5, weights)


def test_pickled_sources_still_fold_in_and_retraining_refreshes_als_cache(board) -> None:
    als = ALS(ALSConfig(factors=4, iterations=3)).train(board.data, TrainOptions(seed=1))
    history = own_histories(board, ["u0"])
    first = als.fold_in_indices(history)
    copy = pickle.loads(pickle.dumps(als))
    np.testing.assert_allclose(copy.fold_in_indices(history), first, rtol=1e-5)
    als.train(board.data, TrainOptions(seed=2))
    assert not np.allclose(als.fold_in_indices(history), first, equal_nan=True)
