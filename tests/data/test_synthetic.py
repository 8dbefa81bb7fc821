from __future__ import annotations

import numpy as np
import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.synthetic import SyntheticConfig, generate

SMALL = SyntheticConfig(n_users=300, n_items=200, n_interactions=6000, seed=7)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = generate(SMALL), generate(SMALL)
    assert a.interactions.equals(b.interactions) and a.items.equals(b.items)
    c = generate(SyntheticConfig(**{**SMALL.__dict__, "seed": 8}))
    assert not a.interactions.equals(c.interactions)


def test_canonical_schema_and_sizes() -> None:
    data = generate(SMALL)
    assert data.interactions.schema == pl.Schema(S.INTERACTIONS_SCHEMA)
    assert data.items.schema == pl.Schema(S.ITEMS_SCHEMA)
    assert data.items.height == 200
    assert data.interactions[S.USER_ID].n_unique() == 300
    assert 6000 <= data.interactions.height <= 6000 * 1.2  # every user gets >= 3
    assert data.interactions.group_by(S.USER_ID).len()["len"].min() >= 3
    assert set(data.interactions[S.ITEM_ID]) <= set(data.items[S.ITEM_ID])


def test_timestamps_increase_within_each_user() -> None:
    frame = generate(SMALL).interactions
    diffs = frame.select(pl.col(S.TS).diff().over(S.USER_ID).alias("d"))["d"].drop_nulls()
    assert (diffs.dt.total_microseconds() > 0).all()


def test_users_concentrate_on_few_topics_that_the_text_names() -> None:
    data = generate(SMALL)
    topic = data.items.select(S.ITEM_ID, pl.col(S.CATEGORIES).list.get(1).alias("topic"))
    joined = data.interactions.join(topic, on=S.ITEM_ID)
    # Share of each user's interactions in their top topic: far above uniform (1/24).
    top_share = (joined.group_by(S.USER_ID, "topic").len()
                 .group_by(S.USER_ID).agg((pl.col("len").max() / pl.col("len").sum()).alias("s")))
    assert top_share["s"].mean() > 0.4
    # The item text names its topic.
    rows = data.items.select(S.TEXT, pl.col(S.CATEGORIES).list.get(1).alias("topic")).rows()
    assert all(t in text for text, t in rows)


def test_popularity_is_skewed_and_some_interactions_repeat() -> None:
    frame = generate(SMALL).interactions
    counts = np.sort(frame.group_by(S.ITEM_ID).len()["len"].to_numpy())[::-1]
    assert counts[: len(counts) // 10].sum() > 0.25 * counts.sum()
    assert frame.select(S.USER_ID, S.ITEM_ID).unique().height < frame.height
