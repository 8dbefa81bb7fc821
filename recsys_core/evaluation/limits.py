"""The evaluation sample limits: how many test users a run's evaluation ranks.

A run's evaluation and its sharded ranking draw the same seeded sample of test users, of
``eval_users(n_items)`` (``evaluate(max_users=...)``).
"""

from __future__ import annotations

EVAL_MAX_USERS = 20_000
"""Most test users evaluated (a seeded sample above this): 20,000 users put the standard
error of a mean metric near 0.002."""
EVAL_MAX_CELLS = 200_000_000
"""Full ranking costs test users x items per model, both growing with the data: the sample
also shrinks so users x items stays under this (never below ``EVAL_MIN_USERS``)."""
EVAL_MIN_USERS = 2_000


def eval_users(n_items: int) -> int:
    """How many test users to evaluate over a catalogue of ``n_items`` (see ``EVAL_MAX_CELLS``).

    Args:
        n_items: catalogue size.
    """
    return max(EVAL_MIN_USERS, min(EVAL_MAX_USERS, EVAL_MAX_CELLS // max(n_items, 1)))
