from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.cf.popular import MostPop, MostPopConfig
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.scoring import Scorer
from tests.scorer_contract import ScorerContract


class TestMostPopContract(ScorerContract):
    personalised = False

    def make_scorer(self) -> Scorer:
        return MostPop(MostPopConfig())


def test_popularity_counts_distinct_users_not_weights() -> None:
    matrix = sp.csr_matrix(np.array([[5, 1, 0], [2, 0, 0], [1, 0, 0]], dtype=np.float32))
    data = InteractionData(matrix, Vocabulary("abc"), Vocabulary(["x", "y", "z"]))
    values = MostPop().train(data).score(["a", "c"]).values
    np.testing.assert_array_equal(values, [[3, 1, 0], [3, 1, 0]])
