"""How far apart the cockpit's redraws must be so drawing stays a small share of one core.

On the 2-core machine the UI thread's CPU time is taken from the trainer twice over:
it is GIL time taken from the trainer's Python-heavy Faster R-CNN step, and every time
the UI (or the terminal drawing what it wrote) runs, one of torch's two OpenMP threads is
preempted while the other waits at the next barrier, burning CPU. With ``log_every = 1``
and a redraw every 0.2 s at 160 x 48, Textual's rendering and compositing took ~21% of a
core and training ran at 0.69 of ``--headless``; at 3% of a core it still ran at ~0.85
(BENCHMARKS.md). A fixed interval cannot be right on every terminal size and machine, so
the interval follows what a frame really costs: the UI thread's CPU time
(``time.thread_time``) between two redraws -- our pane builds, Textual's render and
compositing of the last frame, the bridge's wake-ups -- divided by the share of one core
the cockpit may take (``duty``), never below the configured interval and never above
``ceiling``. Between two such frames the status bar alone (iteration, it/s, ETA: one
line, ~1 ms) is redrawn about every ``STATUS_INTERVAL`` as step records arrive, so the
cockpit never looks stalled while its panes wait for their frame. What the user does is
not held back: keys redraw their pane at once, and state changes (pause, errors, LR,
flags) are drawn as soon as they arrive -- the panes they change and the status bar, not
the chart's new steps (see ``CockpitApp._events_pending``).
"""

from __future__ import annotations

import time
from typing import Callable

FRAME_DUTY = 0.01
"""Share of one core the cockpit's redraws may take while step records stream in: at
160 x 48 a frame costs ~30 ms of the UI thread, so about one redraw every 3 s on the
2-core machine, and every 0.2 s where a frame is cheap."""

FRAME_CEILING = 5.0
"""The longest wait between two redraws of the panes, whatever a frame costs (seconds).
(It was 2 s: at 160 x 48 that cap, not the duty, set the pace, and the UI thread took
2-3% of a core instead of 1%.)"""

STATUS_INTERVAL = 1.0
"""How often the status bar alone is redrawn while the panes wait for their frame (s)."""


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
