"""Full-ranking evaluation of scorers, per user segment.

For every test user (a user with at least one test item not already seen in training), each
scorer scores the whole item vocabulary through its public ``score`` API, in batches of users;
NaN becomes -inf, items the user has in ``train`` become -inf, and the top K finite items are
compared with the user's test items. A user whose row is all NaN/-inf still counts (scoring 0).

Segments (each a set of users and the relevant items they are evaluated on; the ranking is
always the full ranking):

- ``all``: every test user, all their test items.
- ``cold_items``: only test items with no training interaction; users having >= 1 of them.
- ``cold_users``: users with at most ``cold_user_max`` (3) training items; all their test items.
- ``long_tail``: only test items outside the *short head*, the fewest most popular items
  (popularity = number of training users) that together hold ``head_share`` (80%) of the
  training interactions (Abdollahpouri et al.'s head/tail split); items without training
  interactions are tail items. Users having >= 1 tail item.
- ``cold_candidates`` (with ``cold_candidates=True``, for the ``cold_items`` protocol): the
  cold-start literature's view. A second ranking in which only the *cold candidates* (items
  with no training interaction and at least one test interaction) compete; users having >= 1
  of them, evaluated on those items. Coverage is over the candidates.
- any extra segment passed in, as a set of users with all their test items.

Every segment but ``cold_candidates`` reads the full ranking (``FULL``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.evaluation import metrics as M
from recsys_core.evaluation.ranking import exclude_seen, top_k
from recsys_core.scoring import Scorer, Scores, shared_scores

log = logging.getLogger(__name__)

SEGMENTS: tuple[str, ...] = ("all", "cold_items", "cold_users", "long_tail")
COLD_CANDIDATES = "cold_candidates"
"""The optional segment (and ranking) over the cold candidates only."""
FULL = "all"
"""The ranking over every item, which all other segments read."""
BLOCK_CELLS = 16_000_000
"""Scores (users x items) per scoring block: 64 MB of float32 per source, whatever the
catalogue size, so a fusion of several sources stays well under a gigabyte per block."""


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What ``evaluate`` measured.

    Args:
        k: the main cut-off (the first of ``ks``).
        ks: every cut-off measured, the main one first.
        n_items: catalogue size (coverage denominator).
        metrics: model name -> report dict over all test users: ``metrics.metric_keys(K)``
            for each K of ``ks``, in that order.
        segments: segment -> model name -> report dict. Means over an empty segment are NaN.
        per_user: segment -> model name -> per-user metric key (``ndcg@10``, ... at each
            cut-off) -> float64 array aligned with ``users[segment]``.
        users: segment -> the evaluated user IDs.
        n_users: segment -> number of evaluated users.
        topk: model name -> int32 (n_users["all"], max(ks)) recommended item indices (into the
            item vocabulary), best first, ``-1`` for empty slots; rows align with
            ``users["all"]``.
        seconds: model name -> wall time spent scoring and ranking.
    """

    k: int
    ks: tuple[int, ...]
    n_items: int
    metrics: dict[str, dict[str, float]]
    segments: dict[str, dict[str, dict[str, float]]]
    per_user: dict[str, dict[str, dict[str, np.ndarray]]]
    users: dict[str, np.ndarray]
    n_users: dict[str, int]
    topk: dict[str, np.ndarray]
    seconds: dict[str, float]

    @property
    def models(self) -> list[str]:
        """Model names in evaluation order."""
        return list(self.metrics)

    def metric_key(self, metric: str) -> str:
        """Return the full key for ``metric`` (``ndcg`` or ``ndcg@10`` -> ``ndcg@10``).

        Args:
            metric: short name (at the main cut-off) or full key (at any of ``ks``).
        """
        key = metric if "@" in metric else f"{metric}@{self.k}"
        if not any(key in M.metric_keys(k) for k in self.ks):
            raise ValueError(f"unknown metric {metric!r}; expected one of {M.ALL} at "
                             f"{', '.join(map(str, self.ks))}")
        return key

    def user_values(self, name: str, metric: str = "ndcg", segment: str = "all") -> np.ndarray:
        """Per-user values of one metric for one model, aligned with ``users[segment]``.

        Args:
            name: model name.
            metric: per-user metric, short name or full key (coverage has none).
            segment: segment name.
        """
        return self.per_user[segment][name][self.metric_key(metric)]

    def best(self, metric: str = "ndcg", segment: str = "all",
             exclude: tuple[str, ...] = ("fused",)) -> str:
        """Return the model with the highest mean ``metric`` in ``segment``, skipping ``exclude``.

        Args:
            metric: short name or full key.
            segment: segment name.
            exclude: model names not to consider.
        """
        key = self.metric_key(metric)
        table = self.segments[segment]
        candidates = [n for n in table if n not in exclude and not np.isnan(table[n][key])]
        if not candidates:
            raise ValueError(f"no model left to compare on {key} in segment {segment!r}")
        return max(candidates, key=lambda n: table[n][key])


@dataclass(frozen=True)
class _Segment:
    rows: np.ndarray  # positions among the test users
    relevant: sp.csr_matrix  # (len(rows), n_items), boolean
    ranking: str = FULL  # which ranking's lists it reads


def evaluate(
    scorers: Mapping[str, Scorer],
    train: InteractionData,
    test: InteractionData,
    k: int | Sequence[int] = 10,
    segments: Mapping[str, np.ndarray] | None = None,
    batch_size: int | None = None,
    *,
    cold_user_max: int = 3,
    head_share: float = 0.8,
    ranked: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    max_users: int | None = None,
    cold_candidates: bool = False,
) -> Evaluation:
    """Rank all items for every test user with each scorer and measure the lists at each ``k``.

    Never holds more than ``batch_size`` users x all items of scores at once (plus, with
    ``cold_candidates``, the candidates' columns of that block). The ranking
    can be done elsewhere, in shards of users (``test_rows`` + ``rank_users``), and passed in
    as ``ranked``; the metrics are then the same as when ``evaluate`` ranks itself.

    Args:
        scorers: model name -> trained scorer (``fused``, each source, ``most_pop``, ...).
        train: the interactions the scorers were trained on; their items are excluded.
        test: held-out interactions over the same vocabularies; any non-zero is relevant.
        k: the cut-off, or several (the first is the main one): the lists are ranked once,
            ``max(k)`` long, and measured on their first K items at each K.
        segments: extra user segments, name -> user IDs (str array) or a boolean mask
            aligned with the user vocabulary; evaluated on all of their test items.
        batch_size: users per ``score`` call (``None``: ``batch_size_for(n_items)``).
        cold_user_max: users with at most this many training items form ``cold_users``.
        head_share: share of training interactions held by the short head (``long_tail``).
        ranked: ranking (``FULL``, and ``COLD_CANDIDATES`` with ``cold_candidates``) ->
            model name -> top-``max(k)`` lists from ``rank_users`` over ``test_rows`` (in that
            order), for every scorer; ``scorers`` are then not called.
        max_users: evaluate a seeded random sample of this many test users when there are
            more (full ranking costs test users x items, which grows as N^2 when users and
            items both grow with the data); ``None`` evaluates all.
        cold_candidates: also rank only the ``cold_candidate_items`` and report them as the
            segment ``cold_candidates`` (the ``cold_items`` protocol's second view).

    Raises:
        ValueError: on mismatched vocabularies, ``k < 1``, ``batch_size < 1`` or a segment
            name clashing with a built-in one.
    """
    batch_size = batch_size or batch_size_for(train.n_items)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ks = M.cutoffs(k)
    depth = max(ks)
    _check_vocabularies(train, test)
    seen = _pattern(train.matrix)
    relevant, test_rows = _sample(*_test_relevance(seen, test), max_users)
    cold = cold_candidate_items(train, test) if cold_candidates else None
    specs = _segments(train.users, seen, relevant, test_rows, segments or {}, cold_user_max,
                      head_share, cold)
    log.info("evaluating %d models on %d test users, %d items, k=%s",
             len(scorers), len(test_rows), train.n_items, ",".join(map(str, ks)))

    seconds = dict.fromkeys(scorers, 0.0)
    if ranked is None:
        lists = _rank_all(scorers, train.users, train.items, seen, test_rows, depth, batch_size,
                          seconds, cold)
    else:
        lists = _check_ranked(ranked, scorers, cold is not None, (len(test_rows), depth))
    candidates = {FULL: train.n_items, COLD_CANDIDATES: 0 if cold is None else len(cold)}

    table: dict[str, dict[str, dict[str, float]]] = {}
    per_user: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for seg_name, spec in specs.items():
        table[seg_name], per_user[seg_name] = {}, {}
        for name in scorers:
            table[seg_name][name], per_user[seg_name][name] = {}, {}
            for cut in ks:
                chosen = lists[spec.ranking][name][spec.rows, :cut]
                values = M.per_user(chosen, spec.relevant, cut)
                table[seg_name][name] |= M.summarize(
                    values, M.coverage(chosen, candidates[spec.ranking]), cut)
                per_user[seg_name][name] |= {f"{m}@{cut}": v for m, v in values.items()}
    topk = lists[FULL]
    for name in topk:
        log.info("%s: ndcg@%d=%.4f (%.1fs)", name, ks[0], table["all"][name][f"ndcg@{ks[0]}"],
                 seconds[name])
    users_ids = train.users.id(test_rows)
    return Evaluation(
        k=ks[0],
        ks=ks,
        n_items=train.n_items,
        metrics=table["all"],
        segments=table,
        per_user=per_user,
        users={s: users_ids[spec.rows] for s, spec in specs.items()},
        n_users={s: len(spec.rows) for s, spec in specs.items()},
        topk=topk,
        seconds=seconds,
    )


def batch_size_for(n_items: int) -> int:
    """Users per scoring block so one block of scores holds about ``BLOCK_CELLS`` values.

    Args:
        n_items: catalogue size.
    """
    return int(min(1024, max(16, BLOCK_CELLS // max(n_items, 1))))


def test_rows(train: InteractionData, test: InteractionData, max_users: int | None = None
              ) -> np.ndarray:
    """Positions (in the user vocabulary) of the users ``evaluate`` evaluates, in its order.

    Args:
        train: the training interactions.
        test: the held-out interactions.
        max_users: as for ``evaluate``.
    """
    _check_vocabularies(train, test)
    return _sample(*_test_relevance(_pattern(train.matrix), test), max_users)[1]


def _sample(relevant: sp.csr_matrix, rows: np.ndarray, max_users: int | None
            ) -> tuple[sp.csr_matrix, np.ndarray]:
    """At most ``max_users`` of the test users (seeded, in vocabulary order)."""
    if max_users is None or len(rows) <= max_users:
        return relevant, rows
    pick = np.sort(np.random.default_rng(0).choice(len(rows), max_users, replace=False))
    log.info("evaluating a sample of %d of %d test users", max_users, len(rows))
    return relevant[pick], rows[pick]


def rank_users(scorers: Mapping[str, Scorer], train: InteractionData, rows: np.ndarray,
               k: int, batch_size: int | None = None, cold_items: np.ndarray | None = None
               ) -> dict[str, dict[str, np.ndarray]]:
    """Top-``k`` unseen items of the users at ``rows`` for each scorer (one shard's work).

    Args:
        scorers: model name -> trained scorer.
        train: the training interactions (their items are excluded).
        rows: user positions, e.g. a slice of ``test_rows``.
        k: list length.
        batch_size: users per ``score`` call (``None``: ``batch_size_for(n_items)``).
        cold_items: ``cold_candidate_items(train, test)`` to rank these items alone as well,
            from the same scores (for ``evaluate(cold_candidates=True)``).

    Returns:
        Ranking (``FULL``; ``COLD_CANDIDATES`` with ``cold_items``) -> model name -> int32
        (len(rows), k) item indices, best first, ``-1`` for empty slots.
    """
    seen = _pattern(train.matrix)
    batch_size = batch_size or batch_size_for(train.n_items)
    return _rank_all(scorers, train.users, train.items, seen, np.asarray(rows), k, batch_size,
                     cold=cold_items)


def cold_candidate_items(train: InteractionData, test: InteractionData) -> np.ndarray:
    """The candidates of the ``cold_candidates`` segment, sorted item indices.

    The items with no training interaction and at least one test interaction (under the
    ``cold_items`` protocol: the held-out items), over the whole test part, so every shard of
    a sharded evaluation ranks the same candidates.

    Args:
        train: the training interactions.
        test: the held-out interactions.
    """
    _check_vocabularies(train, test)
    warm = _pattern(train.matrix).getnnz(axis=0) > 0
    tested = _pattern(test.matrix).getnnz(axis=0) > 0
    return np.flatnonzero(tested & ~warm)


def _check_vocabularies(train: InteractionData, test: InteractionData) -> None:
    if train.users != test.users or train.items != test.items:
        raise ValueError("train and test must share user and item vocabularies")


def _test_relevance(seen: sp.csr_matrix, test: InteractionData
                    ) -> tuple[sp.csr_matrix, np.ndarray]:
    """Boolean test relevance minus training pairs; rows = test users (and their indices)."""
    rel = _pattern(test.matrix)
    overlap = rel.multiply(seen).tocsr()
    overlap.eliminate_zeros()
    if overlap.nnz:
        log.warning("%d test pairs are also training pairs; they are not counted as relevant "
                    "(seen items are excluded from the ranking)", overlap.nnz)
        rel = (rel.astype(np.int8) - overlap.astype(np.int8)).astype(bool).tocsr()
        rel.eliminate_zeros()
    rows = np.flatnonzero(np.diff(rel.indptr) > 0)
    return rel[rows], rows


def _check_ranked(ranked: Mapping[str, Mapping[str, np.ndarray]], scorers: Mapping[str, Scorer],
                  cold: bool, shape: tuple[int, int]) -> dict[str, dict[str, np.ndarray]]:
    """The rankings ``evaluate`` needs from ``ranked``, each list checked against ``shape``."""
    out = {}
    for ranking in (FULL, COLD_CANDIDATES) if cold else (FULL,):
        if ranking not in ranked:
            raise ValueError(f"ranked lacks the {ranking!r} ranking")
        for name in scorers:
            if ranked[ranking][name].shape != shape:
                raise ValueError(f"ranked[{ranking!r}][{name!r}] has shape "
                                 f"{ranked[ranking][name].shape}, expected {shape}")
        out[ranking] = {name: ranked[ranking][name] for name in scorers}
    return out


def _segments(users: Vocabulary, seen: sp.csr_matrix, relevant: sp.csr_matrix,
              test_rows: np.ndarray, extra: Mapping[str, np.ndarray], cold_user_max: int,
              head_share: float, cold: np.ndarray | None) -> dict[str, _Segment]:
    clash = set(extra) & {*SEGMENTS, COLD_CANDIDATES}
    if clash:
        raise ValueError(f"segment names {sorted(clash)} are built in")
    item_pop = np.bincount(seen.indices, minlength=seen.shape[1])
    user_n = np.diff(seen.indptr)
    everyone = np.ones(len(test_rows), dtype=bool)
    specs = {
        "all": _segment(relevant, everyone, None),
        "cold_items": _segment(relevant, everyone, item_pop == 0),
        "cold_users": _segment(relevant, user_n[test_rows] <= cold_user_max, None),
        "long_tail": _segment(relevant, everyone, ~_short_head(item_pop, head_share)),
    }
    if cold is not None:
        candidate = np.zeros(seen.shape[1], dtype=bool)
        candidate[cold] = True
        specs[COLD_CANDIDATES] = _segment(relevant, everyone, candidate, COLD_CANDIDATES)
    for name, members in extra.items():
        mask = _user_mask(members, users)
        specs[name] = _segment(relevant, mask[test_rows], None)
    return specs


def _segment(relevant: sp.csr_matrix, user_mask: np.ndarray, item_mask: np.ndarray | None,
             ranking: str = FULL) -> _Segment:
    rows = np.flatnonzero(user_mask)
    rel = relevant[rows]
    if item_mask is not None:
        rel = rel.multiply(item_mask[None, :]).tocsr()
        rel.eliminate_zeros()
        keep = np.diff(rel.indptr) > 0
        rows, rel = rows[keep], rel[keep]
    return _Segment(rows, sp.csr_matrix(rel, dtype=bool), ranking)


def _short_head(item_pop: np.ndarray, head_share: float) -> np.ndarray:
    """Boolean mask of the fewest most popular items holding ``head_share`` of interactions."""
    head = np.zeros(len(item_pop), dtype=bool)
    total = item_pop.sum()
    if total == 0:
        return head
    order = np.argsort(-item_pop, kind="stable")
    cumulative = np.cumsum(item_pop[order]) / total
    n_head = int(np.searchsorted(cumulative, head_share - 1e-12) + 1)
    head[order[:n_head]] = True
    return head & (item_pop > 0)


def _user_mask(members: np.ndarray, users: Vocabulary) -> np.ndarray:
    members = np.asarray(members)
    if members.dtype == bool:
        if members.shape != (len(users),):
            raise ValueError("a boolean segment mask must align with the user vocabulary")
        return members
    mask = np.zeros(len(users), dtype=bool)
    index = users.index(members)
    mask[index[index >= 0]] = True
    return mask


def _rank_all(scorers: Mapping[str, Scorer], users: Vocabulary, items: Vocabulary,
              seen: sp.csr_matrix, rows: np.ndarray, k: int, batch_size: int,
              seconds: dict[str, float] | None = None, cold: np.ndarray | None = None
              ) -> dict[str, dict[str, np.ndarray]]:
    """Top-``k`` lists of every scorer, batch by batch under ``shared_scores``.

    A fusion and its sources score each batch once between them; ``seconds`` (when given)
    charges a shared block to the first model that asked for it. With ``cold`` (item
    indices), the same block of scores is also ranked over those items alone.
    """
    rankings = (FULL,) if cold is None else (FULL, COLD_CANDIDATES)
    out = {ranking: {name: np.full((len(rows), k), -1, dtype=np.int32) for name in scorers}
           for ranking in rankings}
    aligners = {name: _Aligner(items) for name in scorers}
    with shared_scores():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            ids = users.id(batch)
            for name, scorer in scorers.items():
                began = time.perf_counter()
                values = aligners[name](scorer.score(ids), len(batch))
                values[np.isnan(values)] = -np.inf
                exclude_seen(values, seen, batch)
                window = slice(start, start + len(batch))
                out[FULL][name][window] = top_k(values, k)
                if cold is not None:  # the candidates' columns only: a fraction of the block
                    top = top_k(values[:, cold], k)
                    found = top >= 0
                    out[COLD_CANDIDATES][name][window][found] = cold[top[found]]
                if seconds is not None:
                    seconds[name] += time.perf_counter() - began
    return out


class _Aligner:
    """Copies a batch of scores into the evaluation item order (float32, writable)."""

    def __init__(self, items: Vocabulary) -> None:
        self.items = items
        self._source: Vocabulary | None = None
        self._columns: np.ndarray | None = None

    def __call__(self, scores: Scores, n_rows: int) -> np.ndarray:
        values = np.asarray(scores.values)
        if values.shape != (n_rows, len(scores.items)):
            raise ValueError(f"scorer returned shape {values.shape}, expected "
                             f"({n_rows}, {len(scores.items)})")
        if scores.items is self.items:
            same = True
        elif scores.items is self._source:
            same = self._columns is None
        else:
            self._source = scores.items
            same = scores.items == self.items
            self._columns = None if same else scores.items.index(self.items.ids)
        if same:
            return np.array(values, dtype=np.float32, copy=True)
        columns = self._columns
        assert columns is not None  # set whenever the vocabularies differ
        out = np.full((n_rows, len(self.items)), np.nan, dtype=np.float32)
        found = columns >= 0
        out[:, found] = values[:, columns[found]]
        return out


def _pattern(matrix: sp.csr_matrix) -> sp.csr_matrix:
    pattern = matrix.copy()
    pattern.sum_duplicates()
    pattern.eliminate_zeros()
    pattern.data = np.ones(len(pattern.data), dtype=bool)
    pattern.sort_indices()
    return pattern
