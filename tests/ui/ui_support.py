"""Pilot helpers for the cockpit's UI tests."""

from __future__ import annotations

import asyncio


async def settle(pilot) -> None:
    """Let posted events, redraws and preview workers finish (no sleeping on the clock)."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def wait_until(pilot, condition, steps: int = 2400) -> None:
    """Until ``condition()`` holds, letting a background thread (an engine, a start-up) work;
    fails after ``steps`` polls instead of hanging."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0.05)
        await pilot.pause()
    raise AssertionError("condition not reached")
