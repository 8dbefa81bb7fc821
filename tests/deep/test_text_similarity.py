from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep.text_similarity import TextSimilarity, TextSimilarityConfig
from recsys_core.scoring import Scorer
from tests.scorer_contract import ScorerContract, checkerboard


class TestTextSimilarityContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return TextSimilarity(TextSimilarityConfig(half_life=10.0))


def _three_items(weights: list[float], times: list[float]) -> InteractionData:
    embeddings = np.eye(3, dtype=np.float32)
    matrix = sp.csr_matrix(np.array([weights], dtype=np.float32))
    stamps = sp.csr_matrix(np.array([times], dtype=np.float64))
    return InteractionData(matrix, Vocabulary(["u"]), Vocabulary("abc"), stamps, embeddings)


def test_scores_are_cosine_to_the_weighted_mean_profile() -> None:
    values = TextSimilarity().train(_three_items([1, 3, 0], [1, 2, 0])).score(["u"]).values
    np.testing.assert_allclose(values[0], np.array([1, 3, 0]) / np.sqrt(10), rtol=1e-6)


def test_half_life_favours_recent_items() -> None:
    data = _three_items([1, 1, 0], [5, 1, 0])  # item a is the newer one
    flat = TextSimilarity().train(data).score(["u"]).values[0]
    recent = TextSimilarity(TextSimilarityConfig(half_life=1.0)).train(data).score(["u"]).values[0]
    assert flat[0] == flat[1]
    # a has age 0 (weight 1), b age 1 (weight 0.5)
    np.testing.assert_allclose(recent[:2], np.array([1, 0.5]) / np.sqrt(1.25), rtol=1e-6)


def test_cold_items_are_scored_and_cold_users_are_nan() -> None:
    board = checkerboard(cold=True)
    values = TextSimilarity().train(board.data).score([board.cold_user, "u0"]).values
    assert np.isnan(values[0]).all()
    assert np.isfinite(values[1]).all()
