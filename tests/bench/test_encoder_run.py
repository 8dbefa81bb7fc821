"""bench/encoder_run.readouts_ndcg scores every readout the fusion tuner can choose."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.encoder_run import readouts_ndcg
from recsys_core.data.interactions import InteractionData
from recsys_core.deep.user_encoder import RECENCIES, UserEncoder
from recsys_core.deep.user_history import UserHistory, UserHistoryConfig
from recsys_core.evaluation.evaluator import evaluate
from recsys_core.scoring import TrainOptions
from tests.deep.test_user_encoder import SMALL, cycle_walks


def test_every_readout_is_scored_as_the_evaluator_scores_it() -> None:
    fit, nxt = cycle_walks(n_users=60, n_items=30, steps=10)
    rows = np.arange(len(nxt))
    valid = InteractionData(sp.csr_matrix((np.ones(len(nxt), np.float32), (rows, nxt)),
                                          shape=fit.matrix.shape), fit.users, fit.items)
    options = TrainOptions(seed=0)
    encoder = UserEncoder(SMALL.model_copy(update={"epochs": 3})).train(fit, options)
    values = readouts_ndcg(encoder, fit, valid, options)
    assert list(values) == ["latest", *(f"half-life {r:g}" for r in RECENCIES if r), "mean"]
    expected = {"latest": encoder, "half-life 16": encoder.read(16.0),
                "mean": UserHistory(UserHistoryConfig(encoder=encoder.config),
                                    encoder=encoder).train(fit, options)}
    metrics = evaluate(expected, fit, valid, k=10).metrics
    for name in expected:
        assert values[name] == metrics[name]["ndcg@10"]
    # The readouts read the same network differently: they do not all score alike.
    assert len(set(values.values())) > 1
