"""How far apart the cockpit's redraws must be so drawing stays a small share of one core.

On the 2-core machine the UI thread's CPU time is GIL time taken from the trainer's
Python-heavy Faster R-CNN step: with ``log_every = 1`` and a redraw every 0.2 s at
160 x 48, Textual's rendering and compositing alone took ~21% of a core and training ran
at 0.69 of ``--headless`` (BENCHMARKS.md). A fixed interval cannot be right on every
terminal size and machine, so the interval follows what a frame really costs: the UI
thread's CPU time (``time.thread_time``) between two redraws -- our pane builds, Textual's
render and compositing of the last frame, the bridge's wake-ups -- divided by the share
of one core the cockpit may take (``duty``), never below the configured interval and never
above ``ceiling`` (a status bar that moves at least every 2 s). What the user does is not
held back: keys redraw their pane at once, and state changes (pause, errors, LR) are drawn
as soon as they arrive (see ``CockpitApp._events_pending``).
"""

from __future__ import annotations

import time
from typing import Callable

FRAME_DUTY = 0.03
"""Share of one core the cockpit's redraws may take while step records stream in."""

FRAME_CEILING = 2.0
"""The longest wait between two redraws, whatever a frame costs (seconds)."""


class FrameBudget:
    """Call :meth:`frame_drawn` at every redraw; :attr:`interval` is the wait until the next."""

    def __init__(
        self,
        floor: float,
        *,
        duty: float = FRAME_DUTY,
        ceiling: float = FRAME_CEILING,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.floor = floor
        self.duty = duty
        self.ceiling = max(ceiling, floor)
        self.interval = floor
        self.frame_cpu: float | None = None
        """UI-thread CPU seconds per redraw period (smoothed); None before the second redraw."""
        self._cpu_clock = cpu_clock
        self._cpu_at_last: float | None = None

    def frame_drawn(self) -> float:
        """A redraw is happening now (on the UI thread): update the cost, return the interval."""
        cpu = self._cpu_clock()
        if self._cpu_at_last is not None:
            spent = max(0.0, cpu - self._cpu_at_last)
            # Smoothed, so one slow frame (a resize, a modal) does not stall the next few.
            self.frame_cpu = spent if self.frame_cpu is None else 0.7 * self.frame_cpu + 0.3 * spent
            self.interval = min(self.ceiling, max(self.floor, self.frame_cpu / self.duty))
        self._cpu_at_last = cpu
        return self.interval
