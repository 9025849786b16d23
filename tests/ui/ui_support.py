"""Pilot helpers for the cockpit's UI tests."""

from __future__ import annotations

import asyncio

from cockpit.ui.loss_history import LossHistory

FLAT_TERMS = {"loss_classifier": 0.4, "loss_box_reg": 0.3, "loss_objectness": 0.2, "loss_rpn_box_reg": 0.1}


def loss_history(steps: int, *, spike_at: int | None = None, decaying: bool = False) -> LossHistory:
    """``steps`` records of the four terms, flat (``FLAT_TERMS``) or with the classifier
    falling as 1/i (``decaying``); a 10.0 spike of the classifier at ``spike_at``."""
    out = LossHistory()
    for i in range(1, steps + 1):
        losses = dict(FLAT_TERMS)
        if decaying:
            losses["loss_classifier"] = 1.0 / i
        if i == spike_at:
            losses["loss_classifier"] = 10.0
        out.add(i, losses, sum(losses.values()))
    return out


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
