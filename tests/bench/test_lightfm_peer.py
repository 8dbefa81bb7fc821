"""The LightFM peer scores cold items from their features (title tokens, categories)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.peers import LightFMConfig, LightFMPeer
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.scoring import TrainOptions

pytest.importorskip("lightfm")

GROUPS = ("alpha", "beta", "gamma")
WARM_PER_GROUP, USERS_PER_GROUP = 4, 10


def planted():
    """Three groups of items sharing a title token; users like every warm item of their group.

    Items 0..11 are warm (4 per group), 12..14 cold (one per group, 20% of the catalogue as
    under cold_items, no training interaction). Every item has title tokens of its own too (a
    cold item three, as a long title has). Each user's test item is their group's cold item,
    so a features-only model must rank it first: the user has seen all the warm items that
    share its group token. (Trained with the cold columns as WARP negatives, LightFM pushed
    the cold items' own tokens down and ranked other groups' warm items above them.)
    """
    n_warm = WARM_PER_GROUP * len(GROUPS)
    titles = [f"{GROUPS[i // WARM_PER_GROUP]} w{i}" for i in range(n_warm)]
    titles += [f"{group} c{g} d{g} e{g}" for g, group in enumerate(GROUPS)]
    n_items, n_users = len(titles), USERS_PER_GROUP * len(GROUPS)
    group_of = np.arange(n_users) // USERS_PER_GROUP
    train_pairs = [(u, group_of[u] * WARM_PER_GROUP + j) for u in range(n_users)
                   for j in range(WARM_PER_GROUP)]
    test_pairs = [(u, n_warm + group_of[u]) for u in range(n_users)]

    def data(pairs):
        rows, cols = np.array(pairs).T
        matrix = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)),
                               shape=(n_users, n_items))
        return InteractionData(matrix, Vocabulary(f"u{u}" for u in range(n_users)),
                               Vocabulary(f"i{i}" for i in range(n_items)),
                               item_titles=np.array(titles, dtype=object))

    return data(train_pairs), data(test_pairs)


@pytest.mark.parametrize("identity", [False, True])
def test_lightfm_ranks_the_cold_item_sharing_the_user_s_tokens_first(identity: bool) -> None:
    train, test = planted()
    peer = LightFMPeer(LightFMConfig(epochs=30, no_components=8, threads=1, identity=identity))
    peer.train(train, TrainOptions(seed=0))
    result = evaluate({"lightfm": peer}, train, test, k=3, cold_candidates=True)
    # ranked among all unseen items (the other groups' warm items and the cold ones) and
    # among the cold items alone, the user's own group's cold item comes first
    assert result.topk["lightfm"][:, 0].tolist() == [12 + u // USERS_PER_GROUP
                                                     for u in range(train.n_users)]
    assert result.metrics["lightfm"]["ndcg@3"] == 1.0
    assert result.segments["cold_candidates"]["lightfm"]["ndcg@3"] == 1.0
