from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep.holdout import (
    EarlyStopping,
    Holdout,
    carve,
    ordered_sequences,
    shuffle_ties,
    time_blocks,
)
from tests.scorer_contract import checkerboard


def test_ndcg_excludes_seen_items_and_discounts_by_rank() -> None:
    holdout = Holdout(np.array([0, 1]), [np.array([0]), np.array([], dtype=np.int64)],
                      np.array([1, 3]))
    scores = torch.tensor([[9.0, 5.0, 1.0, 0.0],    # item 0 seen: item 1 ranks first -> 1
                           [4.0, 3.0, 0.0, 2.0]])   # item 3 ranks third -> 1 / log2(4)
    assert holdout.ndcg(scores, k=10) == (1.0 + 0.5) / 2
    assert holdout.ndcg(torch.tensor([[9.0, 5.0, 1.0, 0.0], [4.0, 3.0, 0.0, 2.0]]), k=2) == 0.5


def test_carve_lends_the_last_item_of_users_with_three_or_more() -> None:
    sequences = [np.array([1, 2, 3]), np.array([4, 5]), np.array([6, 7, 8, 9])]
    kept, holdout = carve(sequences, max_users=10, gen=torch.Generator().manual_seed(0))
    assert holdout is not None
    assert holdout.users.tolist() == [0, 2] and holdout.truth.tolist() == [3, 9]
    assert [k.tolist() for k in kept] == [[1, 2], [4, 5], [6, 7, 8]]
    _, few = carve(sequences, max_users=1, gen=torch.Generator().manual_seed(0))
    assert few is not None and len(few.users) == 1
    short, none = carve([np.array([1, 2])], 10, torch.Generator())
    assert none is None and short[0].tolist() == [1, 2]


def test_early_stopping_restores_the_best_state() -> None:
    net = torch.nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(net, patience=2)
    for value, weight in ((0.1, 1.0), (0.3, 2.0), (0.2, 3.0)):
        net.weight.data.fill_(weight)
        assert not stopper.step(value)
    net.weight.data.fill_(4.0)
    assert stopper.step(0.25)  # second check without gain
    stopper.restore()
    assert float(net.weight.detach()) == 2.0
    assert stopper.best_check == 2


def test_smoothed_early_stopping_outlasts_one_lucky_check() -> None:
    """A rising holdout with one lucky check: compared check by check, the lucky one stops
    training two checks later; compared as means of three, training goes on and keeps the
    latest state (means 0.10, 0.175, 0.157, 0.19, 0.187, 0.24)."""
    values = (0.10, 0.25, 0.12, 0.20, 0.24, 0.28)
    raw = EarlyStopping(torch.nn.Linear(1, 1), patience=2)
    assert [raw.step(v) for v in values[:4]] == [False, False, False, True]
    net = torch.nn.Linear(1, 1, bias=False)
    smoothed = EarlyStopping(net, patience=2, smoothing=3)
    for check, value in enumerate(values, start=1):
        net.weight.data.fill_(check)
        assert not smoothed.step(value)
    net.weight.data.fill_(0.0)
    smoothed.restore()
    assert smoothed.best_check == 6 and float(net.weight.detach()) == 6.0


def test_untimed_holdout_is_a_random_item_not_the_highest_index() -> None:
    """Without times, matrix order is item order: the holdout must not always take the
    user's highest item index."""
    data = checkerboard().data
    untimed = type(data)(data.matrix, data.users, data.items, None, data.item_embeddings)
    last = [s[-1] for s in ordered_sequences(untimed, torch.Generator().manual_seed(0))]
    highest = [data.matrix[u].indices.max() for u in range(data.n_users)]
    assert np.mean(np.array(last) == np.array(highest)) < 0.3
    timed = [s[-1] for s in ordered_sequences(data, torch.Generator().manual_seed(0))]
    assert timed == [data.sequence(u)[-1] for u in range(data.n_users)]


def bursts() -> InteractionData:
    """One user: item 5 at t=1, items 0-3 together at t=2, item 4 at t=3."""
    items = np.array([0, 1, 2, 3, 4, 5])
    times = np.array([2.0, 2.0, 2.0, 2.0, 3.0, 1.0])
    rows = np.zeros(len(items), dtype=np.int64)
    return InteractionData(sp.csr_matrix((np.ones(len(items), np.float32), (rows, items))),
                           Vocabulary(["u"]), Vocabulary(f"i{i}" for i in range(6)),
                           sp.csr_matrix((times, (rows, items))))


def test_items_of_the_same_time_come_in_a_random_order_and_times_still_order() -> None:
    data = bursts()
    assert time_blocks(data)[0].tolist() == [0, 1, 1, 1, 1, 2]
    orders = {tuple(ordered_sequences(data, torch.Generator().manual_seed(seed))[0])
              for seed in range(20)}
    assert all(o[0] == 5 and o[-1] == 4 and sorted(o[1:5]) == [0, 1, 2, 3] for o in orders)
    # matrix order (0, 1, 2, 3) would always be kept; 20 draws of 24 orders give many
    assert len(orders) > 5


def test_shuffle_ties_reads_the_blocks_of_a_carved_sequence() -> None:
    blocks = [np.array([0, 0, 1, 1, 1])]
    carved = [np.array([7, 8, 9, 10])]  # the last item went to the holdout
    for seed in range(10):
        out = shuffle_ties(carved, blocks, torch.Generator().manual_seed(seed))[0]
        assert sorted(out[:2]) == [7, 8] and sorted(out[2:]) == [9, 10]
