"""shared_scores: a fusion and its sources score each evaluation batch once between them."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.evaluation.evaluator import evaluate
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions, shared_scores
from tests.evaluation.conftest import make_data


class Counting(Scorer[ScorerConfig]):
    name = "counting"

    def __init__(self, offset: float) -> None:
        super().__init__(ScorerConfig())
        self.offset, self.calls = offset, 0

    def _fit(self, data, options: TrainOptions) -> None:
        self.n_items = data.n_items

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.add.outer(user_index * 0.1, np.arange(self.n_items) * self.offset)


def _trained(offset: float, data) -> Counting:
    return Counting(offset).train(data)


def test_a_batch_is_scored_once_read_only_and_a_new_batch_replaces_it() -> None:
    data = make_data(4, 6, [(u, u) for u in range(4)])
    scorer = _trained(1.0, data)
    with shared_scores():
        first = scorer.score_indices(np.array([0, 1]))
        again = scorer.score_indices(np.array([0, 1]))
        assert again is first and scorer.calls == 1
        with pytest.raises(ValueError):
            first[0, 0] = 5.0
        scorer.score_indices(np.array([2, 3]))
        scorer.score_indices(np.array([0, 1]))
        assert scorer.calls == 3  # only the latest batch is kept
    scorer.score_indices(np.array([0, 1]))
    assert scorer.calls == 4  # outside the block nothing is stored


def test_evaluation_scores_a_fusion_s_sources_once_per_batch_with_equal_results() -> None:
    data = make_data(8, 10, [(u, (u + 1) % 10) for u in range(8)])
    test = make_data(8, 10, [(u, (u + 3) % 10) for u in range(8)])
    sources = {"a": _trained(1.0, data), "b": _trained(-0.5, data)}
    fused = WeightedFusion(FusionConfig(weights={"a": 1.0, "b": 0.5}), sources).train(data)
    shared = evaluate({"fused": fused, **sources}, data, test, k=3, batch_size=4)
    assert [s.calls for s in sources.values()] == [2, 2]  # 8 users in 2 batches, once each
    alone = evaluate({"a": _trained(1.0, data), "b": _trained(-0.5, data)}, data, test, k=3,
                     batch_size=4)
    for name in sources:
        np.testing.assert_array_equal(shared.topk[name], alone.topk[name])
