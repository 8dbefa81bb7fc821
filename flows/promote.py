"""The promotion flow: challenger vs champion on the same evaluation data, or a rollback."""

from __future__ import annotations

from prefect import flow

from tasks.register import Challenge, Rollback, challenge, rollback


@flow(name="promote")
def promote_flow(margin: float = 0.0, k: int | None = None, rollback_champion: bool = False
                 ) -> Challenge | Rollback:
    """Promote the challenger when it beats the champion by ``margin``; or roll back."""
    if rollback_champion:
        return rollback()
    return challenge(margin, k)
