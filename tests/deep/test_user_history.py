"""UserHistory: the user encoder's network read over the whole history."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys_core.deep.user_encoder import SequenceNet, UserEncoder, UserEncoderConfig, encode
from recsys_core.deep.user_history import UserHistory, UserHistoryConfig
from recsys_core.scoring import Scorer, TrainOptions
from tests.deep.test_user_encoder import SMALL
from tests.scorer_contract import ScorerContract, checkerboard


class TestUserHistoryContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return UserHistory(UserHistoryConfig(encoder=SMALL))


def test_readouts_weigh_the_states_over_consecutive_chunks_by_age() -> None:
    config = UserEncoderConfig(dim=8, blocks=1, max_len=4, text_hidden=8)
    torch.manual_seed(0)
    net = SequenceNet(12, 5, config).eval()
    items = torch.randn(12, 8)
    sequences = [np.array([3, 1, 4, 1, 5, 9, 2]), np.array([], dtype=np.int64), np.array([7])]
    with torch.no_grad():
        history = encode(net, items, sequences, config.max_len, math.inf, batch=2)
        last = encode(net, items, sequences, config.max_len, 0.0)
        halved = encode(net, items, sequences, config.max_len, 2.0, batch=2)
        first = net.states(items[torch.tensor([[3, 1, 4, 1]])])[0]
        second = net.states(items[torch.tensor([[5, 9, 2]])])[0]
        latest = net.states(items[torch.tensor([[1, 5, 9, 2]])])[0, -1]
        single = net.states(items[torch.tensor([[7]])])[0, 0]
    torch.testing.assert_close(history[0], torch.cat([first, second]).mean(dim=0))
    # a half-life of 2 items: the state k items before the latest weighs 2 ** (-k / 2)
    weights = torch.tensor([2 ** (-age / 2) for age in range(6, -1, -1)])
    torch.testing.assert_close(halved[0], (torch.cat([first, second]) * weights[:, None]).sum(0)
                               / weights.sum())
    torch.testing.assert_close(last[0], latest)
    assert not history[1].any() and not last[1].any()
    torch.testing.assert_close(history[2], single)
    torch.testing.assert_close(last[2], single)
    torch.testing.assert_close(halved[2], single)


def test_reads_a_given_trained_encoder_without_training_again(monkeypatch) -> None:
    board = checkerboard()
    options = TrainOptions(seed=2)
    encoder = UserEncoder(SMALL).train(board.data, options)
    monkeypatch.setattr(UserEncoder, "_fit", lambda *_: pytest.fail("trained again"))
    history = UserHistory(UserHistoryConfig(encoder=SMALL), encoder=encoder).train(
        board.data, options)
    assert history.net is encoder.net
    np.testing.assert_array_equal(history.item_vectors, encoder.item_vectors)


def test_an_encoder_of_another_config_is_refused() -> None:
    encoder = UserEncoder(SMALL.model_copy(update={"dim": 16}))
    with pytest.raises(ValueError, match="different config"):
        UserHistory(UserHistoryConfig(encoder=SMALL), encoder=encoder)
