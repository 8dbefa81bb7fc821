"""What a source's fit reuses of the run: the refit on ``train`` starts a deep source from its
model of the first carve's fit part; the user history reads the stored user encoder."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core import pipeline
from recsys_core.deep.user_encoder import UserEncoder
from recsys_core.deep.user_history import UserHistory
from recsys_core.runstore import RunStore
from recsys_core.scoring import TrainOptions

PARAMS = {"dim": 16, "blocks": 1, "max_len": 10, "text_hidden": 16, "epochs": 2}


def test_refit_on_train_starts_from_the_first_carves_model(small_run, monkeypatch) -> None:
    store, embeddings = small_run
    starts: list[object] = []
    original = UserEncoder.warm_start
    monkeypatch.setattr(UserEncoder, "warm_start",
                        lambda self, previous: starts.append(previous) or original(self, previous))
    options = TrainOptions(seed=1)
    pipeline.train_source(store, "user_encoder", PARAMS, "train", options, embeddings)
    assert starts == []  # no carve model yet: trained from scratch
    fit = pipeline.train_source(store, "user_encoder", PARAMS, "fit", options, embeddings)
    pipeline.train_source(store, "user_encoder", PARAMS, "fit2", options, embeddings)
    assert starts == []  # carves never start from each other (one's fit holds the other's
    # validation interactions)
    pipeline.train_source(store, "user_encoder", PARAMS, "train", options, embeddings)
    assert len(starts) == 1
    previous = starts[0]
    assert isinstance(previous, UserEncoder)
    np.testing.assert_array_equal(previous.item_vectors,
                                  RunStore.load_scorer(fit).item_vectors)


def test_another_config_trains_from_scratch(small_run, monkeypatch) -> None:
    store, embeddings = small_run
    options = TrainOptions(seed=1)
    pipeline.train_source(store, "user_encoder", PARAMS, "fit", options, embeddings)
    calls: list[object] = []
    monkeypatch.setattr(UserEncoder, "warm_start", lambda self, previous: calls.append(1))
    pipeline.train_source(store, "user_encoder", {**PARAMS, "dim": 8}, "train", options,
                          embeddings)
    assert calls == []


def test_user_history_reads_the_user_encoder_stored_for_the_same_part(small_run,
                                                                      monkeypatch) -> None:
    store, embeddings = small_run
    options = TrainOptions(seed=1)
    encoder = RunStore.load_scorer(pipeline.train_source(store, "user_encoder", PARAMS, "fit2",
                                                         options, embeddings))
    monkeypatch.setattr(UserEncoder, "_fit", lambda *_: pytest.fail("trained again"))
    history = RunStore.load_scorer(pipeline.train_source(
        store, "user_history", {"encoder": PARAMS}, "fit2", options, embeddings))
    assert isinstance(history, UserHistory)
    np.testing.assert_array_equal(history.item_vectors, encoder.item_vectors)
    with pytest.raises(pytest.fail.Exception, match="trained again"):  # another config: own fit
        pipeline.train_source(store, "user_history", {"encoder": {**PARAMS, "dim": 8}}, "fit2",
                              options, embeddings)
