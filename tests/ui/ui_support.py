"""Pilot helpers for the cockpit's UI tests."""

from __future__ import annotations


async def settle(pilot) -> None:
    """Let posted events, redraws and preview workers finish (no sleeping on the clock)."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
