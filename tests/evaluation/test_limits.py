"""The evaluation sample: bounded by users and by users x items, never below a floor."""

from __future__ import annotations

from recsys_core.evaluation import limits


def test_evaluated_users_shrink_with_the_catalogue() -> None:
    assert limits.eval_users(2_500) == limits.EVAL_MAX_USERS
    assert limits.eval_users(25_000) == 8_000
    assert limits.eval_users(10**7) == limits.EVAL_MIN_USERS
