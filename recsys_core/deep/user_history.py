"""UserHistory: the user encoder's network read over a user's whole history.

The user encoder is trained to predict the next item, and its user vector is the state
after the latest items: right when the question is "what next" (leave_last, temporal). When
the question is which of a user's items are missing from anywhere in their history (a random
holdout such as ``stratified``), the state after the latest items misses the older tastes.
This source reads the same trained network differently: a user is the mean of the states
after every item of their history (``user_encoder.encode`` with an infinite half-life). Being a
separate source, the fusion tuner weighs the two readouts on its validation carves, so no
protocol has to say which one is right.

It trains nothing of its own when given the user encoder already trained on the same data
(the training pipeline passes the stored one); otherwise it trains one from its config.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field

from recsys_core.data.interactions import InteractionData
from recsys_core.deep.holdout import ordered_sequences
from recsys_core.deep.torch_utils import seeded, torch_threads
from recsys_core.deep.user_encoder import (
    SequenceNet,
    UserEncoder,
    UserEncoderConfig,
    encode,
    fold_in_scores,
)
from recsys_core.scoring import History, Scorer, ScorerConfig, TrainOptions


class UserHistoryConfig(ScorerConfig):
    """Settings.

    Args:
        encoder: the user encoder whose network is read.
    """

    encoder: UserEncoderConfig = Field(default_factory=UserEncoderConfig)


class UserHistory(Scorer[UserHistoryConfig]):
    """``score(u, i) = mean_t state_t(u) . item(i)`` over every step of u's history.

    Users with no training interactions score NaN.

    Args:
        config: settings (defaults when ``None``).
        encoder: a user encoder already trained on the same data (its config must equal
            ``config.encoder``), so the network is not trained twice.

    Attributes:
        net: the user encoder's network, on CPU, in eval mode.
        item_vectors: float32 (n_items, dim) the encoder's item vectors.
        user_vectors: float32 (n_users, dim) history readouts; zero rows without history.
    """

    name = "user_history"
    net: SequenceNet
    item_vectors: np.ndarray
    user_vectors: np.ndarray
    warm_users: np.ndarray

    def __init__(self, config: UserHistoryConfig | None = None,
                 encoder: UserEncoder | None = None) -> None:
        super().__init__(config or UserHistoryConfig())
        if encoder is not None and encoder.config != self.config.encoder:
            raise ValueError("the given user encoder was trained with a different config "
                             "than UserHistoryConfig.encoder")
        self._encoder = encoder

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        encoder, self._encoder = self._encoder, None
        if encoder is None or encoder.vocabularies() != (data.users, data.items):
            encoder = UserEncoder(self.config.encoder).train(data, options)
        self.net, self.item_vectors = encoder.net, encoder.item_vectors
        self.warm_users = encoder.warm_users
        with torch_threads(options), seeded(options.seed, torch.device("cpu")) as gen:
            sequences = ordered_sequences(data, gen)
            with torch.no_grad():
                self.user_vectors = encode(self.net, torch.from_numpy(self.item_vectors),
                                           sequences, self.config.encoder.max_len,
                                           math.inf).numpy()

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        scores = self.user_vectors[user_index] @ self.item_vectors.T
        scores[~self.warm_users[user_index]] = np.nan
        return scores

    def _fold_in(self, history: History) -> np.ndarray:
        return fold_in_scores(self.net, self.item_vectors, list(history.sequences),
                              self.config.encoder.max_len, math.inf)
