from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.embed import (
    TextEncoder,
    embed_user_behaviour,
    mean_item_embeddings,
    user_documents,
)


def _data(with_times: bool = True) -> InteractionData:
    frame = pl.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u2"],
        "item_id": ["i1", "i2", "i3", "i3", "i3"],
        "weight": [1.0, 5.0, 2.0, 1.0, 1.0],
        "ts": [datetime(2024, 1, d, tzinfo=UTC) for d in (3, 1, 2, 1, 5)],
    })
    if not with_times:
        frame = frame.drop("ts")
    users = Vocabulary(["u1", "u2", "u3"])  # u3 has no interactions
    items = Vocabulary(["i1", "i2", "i3"])
    embeddings = np.eye(3, dtype=np.float32)
    return InteractionData.from_frame(frame, users, items, embeddings,
                                      np.array(["Toy Story", None, "Heat"], dtype=object))


def test_user_documents_recent_and_strongest() -> None:
    data = _data()
    assert user_documents(data) == ["Toy Story; Heat; i2", "Heat", ""]
    assert user_documents(data, order="strongest", max_items=2) == ["i2; Heat", "Heat", ""]
    assert user_documents(data, prefix="Watched: ")[1] == "Watched: Heat"
    # no times: recent falls back to strongest
    assert user_documents(_data(with_times=False)) == ["i2; Heat; Toy Story", "Heat", ""]
    with pytest.raises(ValueError):
        user_documents(data, order="random")  # type: ignore[arg-type]


def test_embed_user_behaviour_aligned_with_users(make_encoder: Callable[..., TextEncoder]
                                                 ) -> None:
    data = _data()
    encoder = make_encoder(quantize="none")
    vectors = embed_user_behaviour(data, encoder)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    assert np.allclose(vectors[0], encoder.encode(["Toy Story; Heat; i2"])[0], atol=1e-5)
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-5)
    assert not vectors[2].any()


def test_mean_item_embeddings() -> None:
    data = _data()
    weighted = mean_item_embeddings(data, normalize=False)
    assert np.allclose(weighted[0], np.array([1, 5, 2]) / 8)
    assert np.allclose(weighted[1], [0, 0, 1])  # duplicate (u2, i3) rows summed
    assert not weighted[2].any()
    uniform = mean_item_embeddings(data, weighting="uniform")
    assert np.allclose(uniform[0], np.ones(3) / np.sqrt(3))
    recent = mean_item_embeddings(data, max_items=1)
    assert np.allclose(recent[0], [1, 0, 0])  # i1 is u1's latest
    assert recent.dtype == np.float32 and recent.shape == (3, 3)
    bare = data.with_matrix(data.matrix)
    object.__setattr__(bare, "item_embeddings", None)
    with pytest.raises(ValueError, match="needs item embeddings"):
        mean_item_embeddings(bare)
