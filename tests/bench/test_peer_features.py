"""The LightFM peer's item features: every item has one, in any script."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.peers import LightFMPeer
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary


def test_titles_in_any_script_are_tokens_and_no_item_is_left_without_a_feature() -> None:
    titles = ["Duran Duran", "Ленинград", "宇多田ヒカル", "!!!", ""]
    data = InteractionData(sp.csr_matrix((1, len(titles)), dtype=np.float32),
                           Vocabulary(["u0"]), Vocabulary(f"i{i}" for i in range(len(titles))),
                           item_titles=np.array(titles, dtype=object))
    features = dict(LightFMPeer(categories=[["Rock"], [], [], [], []])._features(data))
    assert features[0] == ["c:rock", "t:duran"]
    assert features[1] == ["t:ленинград"]
    assert features[2] == ["t:宇多田ヒカル"]
    assert features[3] == features[4] == ["none"]  # LightFM cannot normalise an empty row
