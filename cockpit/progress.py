"""Counting a long wait into :class:`~cockpit.engine.events.Progress` events.

Torch-, Textual- and Rich-free, so the pre-flight, the evaluation and the report can
all report progress the same way; what shows it (the cockpit's status bar, Rich's
progress display in the CLI, plain lines in a log) is the listener's business.
"""

from __future__ import annotations

import time
from typing import Callable

from cockpit.engine.events import Progress, ProgressTask

ProgressSink = Callable[[Progress], None]
"""Where :class:`ProgressMeter` sends its events."""


def ignore(_: Progress) -> None:
    """The sink that shows nothing (the default everywhere)."""


class ProgressMeter:
    """Counts ``done`` of ``total`` and emits a :class:`Progress` at most every
    ``interval`` seconds (and always at the start and the end), so a loop over 100,000
    items can call :meth:`advance` each time without flooding its listener."""

    def __init__(
        self, task: ProgressTask, total: int, sink: ProgressSink | None = None, detail: str = "", interval: float = 0.25
    ) -> None:
        self.task, self.total, self.detail = task, max(0, int(total)), detail
        self.sink = sink or ignore
        self.interval = interval
        self.done = 0
        self._started = time.monotonic()
        self._last = -float("inf")
        self._emit(force=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._emit(force=self.done >= self.total)

    def update(self, done: int) -> None:
        self.done = int(done)
        self._emit(force=self.done >= self.total)

    def finish(self) -> None:
        """The last event, with ``done == total`` (also when the loop ended early)."""
        if self.done < self.total:
            self.done = self.total
            self._emit(force=True)

    def _emit(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.sink(Progress(self.task, self.done, self.total, self.detail, rate, eta))
