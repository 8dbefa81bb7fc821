"""Train/test splits of canonical interaction frames, one function per protocol.

Every drawn protocol first collapses repeated (user, item) pairs into one row (see
``deduplicate``), so a pair never lands in both train and test: the evaluator excludes items
a user saw in training, and a test pair that is also a training pair could never be hit.
Random protocols are seeded and independent of the input row order. The ``given`` protocol
draws nothing: it reproduces the published split the rows carry in ``split`` (see ``given``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys_core.data import schema as S

log = logging.getLogger(__name__)

GIVEN = "given"
DRAWN_PROTOCOLS: tuple[str, ...] = ("stratified", "temporal", "leave_last", "cold_items")
"""The protocols that draw a split themselves (seeded where random)."""
PROTOCOLS: tuple[str, ...] = (*DRAWN_PROTOCOLS, GIVEN)
TIMED_PROTOCOLS: tuple[str, ...] = ("temporal", "leave_last")
"""The protocols that order interactions by ``ts`` (data without times cannot use them)."""
DEFAULT_TEST_FRACTION = 0.25
DEFAULT_COLD_FRACTION = 0.2
REASON = "reason"

_IS_TEST = "__is_test"


@dataclass(frozen=True)
class Split:
    """Two disjoint interaction frames with the input's columns.

    Args:
        train: the part models fit on (or, from ``validation_split``, the fit part).
        test: the held-out part (or the validation part).
        rejected: input rows in neither part, with the input's columns and a ``reason``
            (``given``: held-out rows whose pair an earlier part holds); None when a protocol
            places every row.
    """

    train: pl.DataFrame
    test: pl.DataFrame
    rejected: pl.DataFrame | None = None


def deduplicate(frame: pl.DataFrame) -> pl.DataFrame:
    """Collapse repeated (user, item) pairs into one row per pair.

    The kept row is the pair's latest one by ``ts`` (nulls count as oldest; ties keep the
    later row in input order), so ``event``, ``rating`` and ``ts`` come from the latest
    interaction, while ``weight`` is the sum over the pair (null weights count as 1.0,
    matching ``InteractionData.from_frame``). The output is sorted by (user_id, item_id).

    Args:
        frame: canonical interactions (at least ``user_id`` and ``item_id``).
    """
    _require(frame, (S.USER_ID, S.ITEM_ID))
    keys = [S.USER_ID, S.ITEM_ID]
    ordered = frame.sort(S.TS, nulls_last=False, maintain_order=True) if S.TS in frame.columns \
        else frame
    aggs = [pl.col(c).last() for c in frame.columns if c not in (*keys, S.WEIGHT)]
    if S.WEIGHT in frame.columns:
        aggs.append(pl.col(S.WEIGHT).fill_null(1.0).sum())
    out = ordered.group_by(keys, maintain_order=True).agg(aggs)
    return out.select(frame.columns).sort(keys)


def stratified(frame: pl.DataFrame, test_fraction: float = DEFAULT_TEST_FRACTION,
               seed: int = 42, min_interactions: int = 2) -> Split:
    """Per-user random split, as Microsoft Recommenders' ``python_stratified_split``.

    Each user with at least ``min_interactions`` (and at least two) distinct items sends
    ``round(n * test_fraction)`` of them (half rounds up), clipped to ``[1, n - 1]``, to test,
    so every such user has at least one item on each side; other users keep everything in
    train. Pairs are deduplicated first (see ``deduplicate``).

    Args:
        frame: canonical interactions.
        test_fraction: share of each user's items held out, in (0, 1).
        seed: random seed; the same seed and pairs give the same split in any row order.
        min_interactions: users with fewer distinct items stay wholly in train.
    """
    _check_fraction(test_fraction, "test_fraction")
    data = deduplicate(frame)
    rng = np.random.default_rng(seed)
    n = pl.len().over(S.USER_ID)
    n_test = (
        pl.when(n >= max(min_interactions, 2))
        .then(((n * test_fraction) + 0.5).floor().cast(pl.Int64).clip(1, n - 1))
        .otherwise(0)
    )
    rank = pl.col("__key").rank("ordinal").over(S.USER_ID)
    marked = data.with_columns(pl.Series("__key", rng.random(data.height))).with_columns(
        (rank <= n_test).alias(_IS_TEST)
    ).drop("__key")
    return _partition(marked, "stratified")


def temporal(frame: pl.DataFrame, test_fraction: float = DEFAULT_TEST_FRACTION) -> Split:
    """Global time cut: interactions at or after the cut go to test, earlier ones to train.

    The cut is the timestamp of the ``round(n * test_fraction)``-th latest (deduplicated)
    interaction, so ties at the cut all go to test and ``max(train.ts) < min(test.ts)``.

    Args:
        frame: canonical interactions with non-null ``ts``.
        test_fraction: share of interactions after the cut, in (0, 1).
    """
    _check_fraction(test_fraction, "test_fraction")
    data = _with_ts(deduplicate(frame), "temporal")
    if data.height == 0:
        return Split(data, data.clear())
    n_test = min(max(int(np.floor(data.height * test_fraction + 0.5)), 1), data.height)
    cut = data[S.TS].sort()[data.height - n_test]
    log.info("temporal split: cut at %s", cut)
    return _partition(data.with_columns((pl.col(S.TS) >= cut).alias(_IS_TEST)), "temporal")


def leave_last(frame: pl.DataFrame) -> Split:
    """Each user's last interaction (by ``ts``) goes to test, for users with >= 2 items.

    Ties in ``ts`` are broken by ``item_id`` (the greatest is "last"). Users with one item
    stay in train.

    Args:
        frame: canonical interactions with non-null ``ts``.
    """
    data = _with_ts(deduplicate(frame), "leave_last").sort([S.USER_ID, S.TS, S.ITEM_ID])
    n = pl.len().over(S.USER_ID)
    position = pl.int_range(pl.len()).over(S.USER_ID)
    marked = data.with_columns(((n >= 2) & (position == n - 1)).alias(_IS_TEST))
    return _partition(marked.sort([S.USER_ID, S.ITEM_ID]), "leave_last")


def cold_items(frame: pl.DataFrame, fraction: float = DEFAULT_COLD_FRACTION, seed: int = 42
               ) -> Split:
    """Hold out a random ``fraction`` of items with all their interactions.

    ``round(n_items * fraction)`` items (at least one, and never all, when there are two or
    more) are drawn uniformly; every interaction on them goes to test, so test items never
    appear in train.

    Args:
        frame: canonical interactions.
        fraction: share of distinct items held out, in (0, 1).
        seed: random seed; the same seed and items give the same split in any row order.
    """
    _check_fraction(fraction, "fraction")
    data = deduplicate(frame)
    items = data[S.ITEM_ID].unique().sort()
    n_cold = int(np.floor(len(items) * fraction + 0.5))
    if len(items) >= 2:
        n_cold = min(max(n_cold, 1), len(items) - 1)
    rng = np.random.default_rng(seed)
    cold = items.gather(np.sort(rng.permutation(len(items))[:n_cold]))
    return _partition(data.with_columns(pl.col(S.ITEM_ID).is_in(cold.implode()).alias(_IS_TEST)),
                      "cold_items")


def given(frame: pl.DataFrame) -> Split:
    """The published split the rows carry in ``split``: nothing is drawn, deduplicated or moved.

    ``test`` holds the ``test`` rows; ``train`` holds the ``train`` and ``valid`` rows (what
    the final model learns from; ``validation_split`` separates them again). A pair belongs to
    the earliest part that holds it (train, then valid, then test): a ``valid`` or ``test``
    row whose (user, item) pair an earlier part holds could never be hit (seen items are
    excluded from rankings), so it is rejected, reason ``split: (user_id, item_id) also in
    <part>``. Test rows of users or items without training rows stay (the cold segments).

    Args:
        frame: canonical interactions whose every row has a ``split`` label.

    Raises:
        ValueError: no ``split`` labels, a row without one, an unknown label, or no train or
            no test rows (one line).
    """
    labels = _split_labels(frame)
    rank = pl.col(S.SPLIT).replace_strict(S.SPLIT_LABELS, range(len(S.SPLIT_LABELS)))
    earliest = rank.min().over([S.USER_ID, S.ITEM_ID])
    marked = frame.with_columns((rank > earliest).alias("__rejected"),
                                earliest.replace_strict(range(len(S.SPLIT_LABELS)),
                                                        S.SPLIT_LABELS).alias("__earliest"))
    reason = pl.concat_str(pl.lit(f"{S.SPLIT}: ({S.USER_ID}, {S.ITEM_ID}) also in "),
                           pl.col("__earliest"))
    rejected = marked.filter(pl.col("__rejected")).select(*frame.columns, reason.alias(REASON))
    kept = marked.filter(~pl.col("__rejected")).select(frame.columns)
    held_out = pl.col(S.SPLIT) == "test"
    if rejected.height:
        log.warning("given split: %d held-out rows rejected, their (user, item) pair is in an "
                    "earlier part (%s)", rejected.height,
                    dict(rejected[S.SPLIT].value_counts().iter_rows()))
    log.info("given split: rows per label %s", labels)
    return Split(kept.filter(~held_out), kept.filter(held_out), rejected)


def split(frame: pl.DataFrame, protocol: str, seed: int = 42, fraction: float | None = None
          ) -> Split:
    """Split ``frame`` by protocol name.

    Args:
        frame: canonical interactions.
        protocol: one of ``PROTOCOLS``.
        seed: random seed (ignored by ``temporal``, ``leave_last`` and ``given``).
        fraction: held-out share; ``None`` for the protocol's default (0.25, or 0.2 items
            for ``cold_items``); ignored by ``leave_last`` and ``given``.

    Raises:
        ValueError: for an unknown protocol, or ``given`` without split labels.
    """
    if protocol == "stratified":
        return stratified(frame, _or(fraction, DEFAULT_TEST_FRACTION), seed)
    if protocol == "temporal":
        return temporal(frame, _or(fraction, DEFAULT_TEST_FRACTION))
    if protocol == "leave_last":
        return leave_last(frame)
    if protocol == "cold_items":
        return cold_items(frame, _or(fraction, DEFAULT_COLD_FRACTION), seed)
    if protocol == GIVEN:
        return given(frame)
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def validation_split(train_frame: pl.DataFrame, protocol: str, seed: int = 42,
                     fraction: float | None = None) -> Split:
    """Carve a validation split out of training data only, with the test protocol.

    ``leave_last`` sends each user's last *training* interaction (the one before the test
    one) to validation; ``cold_items`` holds a share of the training items out; ``stratified``
    and ``temporal`` apply the same split to the training part. ``given`` takes the published
    ``valid`` rows as they are and the ``train`` rows as the fit part; without ``valid`` rows
    it carves with ``leave_last`` (each user's latest training interaction, as in the
    leave-one-out splits papers publish). Never pass test data here.

    Args:
        train_frame: the ``train`` frame of the test split.
        protocol: the protocol the test split used.
        seed: random seed.
        fraction: held-out share; ``None`` for the protocol's default.

    Returns:
        ``Split(train=fit part, test=validation part)``.

    Raises:
        ValueError: for an unknown protocol.
    """
    if protocol == GIVEN:
        valid = pl.col(S.SPLIT) == "valid"
        if train_frame.filter(valid).height:
            return Split(train_frame.filter(~valid), train_frame.filter(valid))
        return leave_last(train_frame)
    return split(train_frame, protocol, seed, fraction)


ROLLING = ("temporal", "leave_last", GIVEN)
"""Protocols whose split has no randomness: their further carves roll back in time."""


def validation_carves(train_frame: pl.DataFrame, protocol: str, seed: int = 42, carves: int = 1
                      ) -> list[Split]:
    """Several validation splits of the training data, for a tuner whose choice must transfer.

    The first is ``validation_split``. For a random protocol (``stratified``,
    ``cold_items``) carve ``c`` is the same split with seed ``seed + c``; for ``temporal``
    and ``leave_last`` it is the protocol applied again to the previous carve's fit part, so
    it validates on the interactions just before the previous validation ones (each user's
    second-to-last training item, and so on). ``given`` rolls back the same way: after the
    given ``valid`` rows (or each user's latest ``train`` pair), each user's latest pair of
    the previous fit part.

    Args:
        train_frame: the ``train`` frame of the test split.
        protocol: the protocol the test split used.
        seed: random seed of the first carve.
        carves: how many carves (at least 1).

    Returns:
        ``carves`` splits, each ``Split(train=fit part, test=validation part)``.
    """
    if carves < 1:
        raise ValueError(f"carves must be >= 1, got {carves}")
    out = [validation_split(train_frame, protocol, seed)]
    for carve in range(1, carves):
        if protocol in ROLLING:
            out.append(validation_split(out[-1].train, protocol, seed))
        else:
            out.append(validation_split(train_frame, protocol, seed + carve))
    return out


def _partition(marked: pl.DataFrame, protocol: str) -> Split:
    train = marked.filter(~pl.col(_IS_TEST)).drop(_IS_TEST)
    test = marked.filter(pl.col(_IS_TEST)).drop(_IS_TEST)
    log.info("%s split: %d train, %d test interactions", protocol, train.height, test.height)
    return Split(train, test)


def _split_labels(frame: pl.DataFrame) -> dict[str, int]:
    """Rows per ``split`` label, once every row has a known one and train and test have rows."""
    _require(frame, (S.USER_ID, S.ITEM_ID))
    if S.SPLIT not in frame.columns or frame[S.SPLIT].null_count() == frame.height:
        raise ValueError(f"protocol 'given' needs the published split in the interactions' "
                         f"{S.SPLIT!r} column (train, valid, test; or RecBole's "
                         f"<name>.train|valid|test.inter files): these interactions have none")
    counts = dict(frame[S.SPLIT].value_counts().iter_rows())
    missing = counts.pop(None, 0)
    if missing:
        raise ValueError(f"protocol 'given': {missing} of {frame.height} interactions have no "
                         f"{S.SPLIT!r} label (appended without one?)")
    unknown = sorted(set(counts) - set(S.SPLIT_LABELS))
    if unknown:
        raise ValueError(f"protocol 'given': unknown {S.SPLIT!r} labels {unknown} "
                         f"(expected {', '.join(S.SPLIT_LABELS)})")
    for label in ("train", "test"):
        if not counts.get(label):
            raise ValueError(f"protocol 'given': no interaction has {S.SPLIT!r} = {label!r}")
    return {label: counts.get(label, 0) for label in S.SPLIT_LABELS}


def _with_ts(frame: pl.DataFrame, protocol: str) -> pl.DataFrame:
    if S.TS not in frame.columns or frame[S.TS].null_count() > 0:
        raise ValueError(f"the {protocol} protocol needs a non-null {S.TS!r} column")
    return frame


def _require(frame: pl.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"interactions frame lacks columns {missing}")


def _check_fraction(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
