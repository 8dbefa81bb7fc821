"""Serving requests: validate request rows and answer them as one flat frame.

A request row carries ``k`` (optional, default 10) and one of:

- ``user_id``: a known user's top-k; an unknown user gets popular items, flagged ``fallback``;
- ``recent_items``: item IDs, oldest first (fold-in for a user the model never saw; with a
  known ``user_id`` they extend that user's history);
- ``query``: free text, matched against the items' text embeddings.

Every problem raises ``RequestError`` naming the row and the field, so a server can answer
400 with a message a client can act on.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeGuard

import numpy as np
import pandas as pd

from recsys_core.model.recommendation import Recommendation

FIELDS = ("user_id", "recent_items", "query", "k")
OUTPUT_COLUMNS = ["request", "user_id", "rank", "item_id", "title", "score", "fallback",
                  "contributions"]
DEFAULT_K = 10
MAX_K = 1000
MAX_RECENT = 1000
MAX_QUERY_CHARS = 2000


class RequestError(ValueError):
    """A request row that cannot be answered; the message names the row and field."""


@dataclass(frozen=True)
class Request:
    """One validated request row.

    Args:
        user_id: the user, or None.
        recent_items: recent item IDs, or None.
        query: free text, or None.
        k: how many items.
    """

    user_id: str | None
    recent_items: list[str] | None
    query: str | None
    k: int


def parse_request(position: int, row: Mapping[str, object]) -> Request:
    """Validate one request row.

    Args:
        position: the row's position (for messages).
        row: field -> value (missing fields and null values are absent).

    Raises:
        RequestError: a field has a wrong type or value, or the row asks for nothing.
    """
    where = f"row {position}"
    k = _k(where, row.get("k"))
    user = _user(where, row.get("user_id"))
    recent = _recent(where, row.get("recent_items"))
    query = _query(where, row.get("query"))
    if query is not None and (user is not None or recent is not None):
        raise RequestError(f"{where}: give either 'query' or 'user_id'/'recent_items', "
                           "not both")
    if user is None and recent is None and query is None:
        raise RequestError(f"{where}: field 'user_id' is empty (give a 'user_id', "
                           "'recent_items' or a 'query')")
    return Request(user, recent, query, k)


class Recommender(Protocol):
    """What answers requests: ``HybridRecommender``, or ``ServedModel`` in front of one."""

    def recommend(self, user_id: str | None = None, k: int = 10, exclude_seen: bool = True,
                  *, recent_items: Sequence[str] | None = None, query: str | None = None
                  ) -> list[Recommendation]:
        """Top-``k`` items for a user, recent items or a text query."""
        ...


def recommend_frame(model: Recommender, requests: pd.DataFrame) -> pd.DataFrame:
    """Answer a frame of requests: one output row per recommended item.

    Output columns: ``request`` (the request row's position), ``user_id`` ("" when the row
    had none), ``rank`` (from 1), ``item_id``, ``title``, ``score`` (fused), ``fallback``
    (popular items served because nothing was known) and ``contributions`` (source name ->
    its weighted normalised part of the score).

    Args:
        model: the recommender.
        requests: columns among ``user_id``, ``recent_items``, ``query`` and ``k``.

    Raises:
        RequestError: on the first bad row (nothing is answered then).
    """
    present = [name for name in FIELDS if name in requests.columns]
    columns = [requests[name].tolist() for name in present]
    rows = [dict(zip(present, values, strict=True))
            for values in zip(*columns, strict=True)]
    return pd.DataFrame(answer(model, rows, present), columns=OUTPUT_COLUMNS)


def answer(model: Recommender, rows: Sequence[Mapping[str, object]],
           fields: Collection[str]) -> list[list[object]]:
    """Answer request rows: one ``OUTPUT_COLUMNS`` list per recommended item.

    Args:
        model: the recommender.
        rows: field -> value per request row; null-like values count as absent.
        fields: the fields the request names (a frame's columns, the keys of its records).

    Raises:
        RequestError: no request field is named at all, or on the first bad row (nothing
            is answered then).
    """
    if not set(fields) & {"user_id", "recent_items", "query"}:
        raise RequestError("request has none of the fields 'user_id', 'recent_items', "
                           "'query'")
    parsed = [parse_request(position, {name: value for name, value in row.items()
                                       if name in FIELDS and not _missing(value)})
              for position, row in enumerate(rows)]
    out: list[list[object]] = []
    for position, request in enumerate(parsed):
        try:
            recs = model.recommend(request.user_id, request.k,
                                   recent_items=request.recent_items, query=request.query)
        except ValueError as error:
            raise RequestError(f"row {position}: {error}") from error
        user = request.user_id or ""
        out += [[position, user, rank, rec.item_id, rec.title, rec.score, rec.fallback,
                 rec.contributions] for rank, rec in enumerate(recs, start=1)]
    return out


def _missing(value: object) -> bool:
    """Null-like: None, NaN, pandas NA (lists and arrays are never missing)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _k(where: str, value: object) -> int:
    if value is None:
        return DEFAULT_K
    if not _valid_k(value):
        raise RequestError(f"{where}: field 'k' must be an integer in 1..{MAX_K}, "
                           f"got {value!r}")
    return int(float(value))


def _valid_k(k: object) -> TypeGuard[int | float | np.integer | np.floating]:
    """Whether ``k`` is an integral number (not a bool) in 1..MAX_K."""
    if isinstance(k, bool | np.bool_) or not isinstance(k, int | float | np.integer
                                                         | np.floating):
        return False
    value = float(k)
    return value.is_integer() and 1 <= value <= MAX_K


def _item_id(value: object) -> str | None:
    """A string ID from a string or an integer (not a bool); None otherwise."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    return None


def _user(where: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        raise RequestError(f"{where}: field 'user_id' is empty")
    user = _item_id(value)
    if user is None:
        raise RequestError(f"{where}: field 'user_id' must be a string, got {value!r}")
    return user


def _recent(where: str, value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | np.ndarray):
        raise RequestError(f"{where}: field 'recent_items' must be a list of item ids, "
                           f"got {value!r}")
    if len(value) > MAX_RECENT:
        raise RequestError(f"{where}: field 'recent_items' holds {len(value)} items; at most "
                           f"{MAX_RECENT}")
    items = [_item_id(item) for item in value]
    ids = [item for item in items if item is not None]
    if len(ids) < len(items):
        raise RequestError(f"{where}: field 'recent_items' must hold non-empty string ids, "
                           f"got {list(value)!r}")
    return ids


def _query(where: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(f"{where}: field 'query' must be a string, got {value!r}")
    if not value.strip():
        raise RequestError(f"{where}: field 'query' is empty")
    if len(value) > MAX_QUERY_CHARS:
        raise RequestError(f"{where}: field 'query' is longer than {MAX_QUERY_CHARS} "
                           "characters")
    return value
