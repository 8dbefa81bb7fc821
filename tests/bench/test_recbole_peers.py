"""The RecBole peers train through RecBole and score in our vocabulary's order."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.recbole_peers import RecBoleConfig, RecBoleLightGCN, RecBoleSASRec
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.scoring import TrainOptions

pytest.importorskip("recbole")

N_ITEMS = 12
SMALL = {"train_batch_size": 64, "learning_rate": 0.01}  # a tiny set: more, larger steps


def part(n_users: int, pairs: list[tuple[int, int, float]]) -> InteractionData:
    """InteractionData over u0.. and i0.. (the items listed backwards, so that our indices
    and the IDs' order differ) from (user, item, time) triples."""
    rows, cols, stamps = (np.array(x) for x in zip(*pairs, strict=True))
    shape = (n_users, N_ITEMS)
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    times = sp.csr_matrix((stamps.astype(np.float64), (rows, cols)), shape=shape)
    return InteractionData(matrix, Vocabulary(f"u{u}" for u in range(n_users)),
                           Vocabulary(f"i{i}" for i in reversed(range(N_ITEMS))), times)


def cycles(n_users: int = 120, length: int = 7):
    """Each user walks the cycle 0 -> 1 -> ... -> 11 -> 0 from its own start; the last step is
    test, the one before validation (leave_last), so the next item is always determined."""
    walks = {u: [(u + t) % N_ITEMS for t in range(length)] for u in range(n_users)}
    train = [(u, i, float(t)) for u, w in walks.items() for t, i in enumerate(w[:-1])]
    valid = [(u, w[-2], float(length - 2)) for u, w in walks.items()]
    test = [(u, w[-1], float(length - 1)) for u, w in walks.items()]
    return part(n_users, train), part(n_users, valid), part(n_users, test)


def test_sasrec_ranks_the_next_item_of_a_cycle_first() -> None:
    train, valid, test = cycles()
    peer = RecBoleSASRec(RecBoleConfig(epochs=40, overrides=SMALL), validation=valid).train(
        train, TrainOptions(seed=0))
    assert peer.epochs_run <= 40 and 0 <= peer.best_epoch < peer.epochs_run
    result = evaluate({"sasrec": peer}, train, test, k=1)
    # the top item is the successor of the user's last train item (cycle position + 6)
    nxt = [(u + 6) % N_ITEMS for u in range(train.n_users)]
    top = result.topk["sasrec"][:, 0]
    assert np.mean(top == nxt) > 0.9
    assert result.metrics["sasrec"]["hit@1"] > 0.9


def test_lightgcn_ranks_the_user_s_community_first() -> None:
    # two communities, even and odd items; each user has all but one item of its parity
    # (the held-out one is test; one more is validation)
    n_users = 60
    liked = {u: [i for i in range(N_ITEMS) if i % 2 == u % 2] for u in range(n_users)}
    held = {u: liked[u][(u // 2) % len(liked[u])] for u in range(n_users)}
    check = {u: liked[u][(u // 2 + 1) % len(liked[u])] for u in range(n_users)}
    train = part(n_users, [(u, i, 0.0) for u in liked for i in liked[u] if i != held[u]])
    valid = part(n_users, [(u, check[u], 0.0) for u in liked])
    test = part(n_users, [(u, held[u], 0.0) for u in liked])
    peer = RecBoleLightGCN(RecBoleConfig(epochs=40, overrides=SMALL), validation=valid).train(
        train, TrainOptions(seed=0))
    result = evaluate({"lightgcn": peer}, train, test, k=1)
    # the only unseen item of the user's parity must come first, not one of the 6 others
    assert result.metrics["lightgcn"]["hit@1"] > 0.9
    assert not np.isnan(peer.item_factors).any()
