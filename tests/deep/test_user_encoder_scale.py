"""UserEncoder's per-epoch window cap: an epoch's cost stops growing with the data."""

from __future__ import annotations

import numpy as np

from recsys_core.deep import user_encoder
from recsys_core.deep.user_encoder import UserEncoder
from recsys_core.scoring import TrainOptions
from tests.deep.test_user_encoder import SMALL, cycle_walks


def test_max_windows_caps_the_steps_per_epoch(monkeypatch) -> None:
    data, _ = cycle_walks()  # 200 users, one window each
    steps: list[int] = []
    step = user_encoder._Trainer._step
    monkeypatch.setattr(user_encoder._Trainer, "_step",
                        lambda self, window: steps.append(len(window)) or step(self, window))
    config = SMALL.model_copy(update={"epochs": 3, "max_windows": 40, "batch_size": 16,
                                      "early_stopping": "none"})
    model = UserEncoder(config).train(data, TrainOptions(seed=1))
    assert sum(steps) == 3 * 40 and max(steps) == 16
    assert np.isfinite(model.score(data.users.ids).values).all()
