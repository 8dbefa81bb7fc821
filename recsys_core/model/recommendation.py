"""One recommended item: what every way of answering a request returns.

Kept apart from ``hybrid`` (which imports the sources, torch among them) so that answering
from precomputed lists imports only NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recommendation:
    """One recommended item.

    Args:
        item_id: the item.
        title: its title ("" when unknown).
        score: fused score (popularity share for a fallback, cosine for a text query).
        contributions: source name -> weighted normalised score it added.
        fallback: True when nothing was known about the user and popular items were served.
    """

    item_id: str
    title: str
    score: float
    contributions: dict[str, float]
    fallback: bool = False
