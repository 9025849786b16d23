"""Counting a long wait into :class:`~cockpit.engine.events.Progress` events.

Torch-, Textual- and Rich-free, so the pre-flight, the evaluation and the report can
all report progress the same way; what shows it (the cockpit's status bar, Rich's
progress display in the CLI, plain lines in a log) is the listener's business.
"""

from __future__ import annotations

import time
from typing import Callable, TextIO

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


class PlainProgress:
    """Plain periodic lines: the first once a wait has lasted ``quiet_s``, then one every
    ``every_s`` and a last one when it ends -- a short wait prints nothing, a long one is
    never a silent minute. A sink (writes to ``stream``), or :meth:`line` for a caller
    that prints itself (the headless printer)."""

    def __init__(self, stream: TextIO | None = None, quiet_s: float = 2.0, every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.quiet_s, self.every_s, self.clock = stream, quiet_s, every_s, clock
        self._started: dict[tuple, float] = {}
        self._printed: dict[tuple, float] = {}

    def __call__(self, progress: Progress) -> None:
        text = self.line(progress)
        if text is not None and self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()

    def line(self, progress: Progress) -> str | None:
        """The line to print for this event now, or None."""
        key = (progress.task, progress.detail)
        now = self.clock()
        if progress.done == 0 or key not in self._started:
            self._started[key] = now
            self._printed.pop(key, None)
        last = self._printed.get(key)
        if progress.finished:
            self._started.pop(key, None)
            self._printed.pop(key, None)
            return describe(progress) if last is not None else None  # close what was announced
        due = now - self._started[key] >= self.quiet_s if last is None else now - last >= self.every_s
        if not due:
            return None
        self._printed[key] = now
        return describe(progress)


def _count(value: float, detail: str) -> str:
    if detail.startswith("bytes"):
        return f"{value / 1e6:,.1f}"
    return f"{int(value):,}"


def describe(progress: Progress) -> str:
    """One line for a status bar or a log: ``checking data 3,200/10,000 train images
    (1,250/s, ETA 5 s)``; byte counts read in MB."""
    from cockpit.durations import format_duration

    detail = progress.detail
    unit = "MB" + detail[len("bytes"):] if detail.startswith("bytes") else detail
    text = f"{progress.task.value} {_count(progress.done, detail)}/{_count(progress.total, detail)}"
    text += f" {unit}" if unit else ""
    if progress.finished:
        return text + " (done)"
    extras = []
    if progress.rate > 0:
        rate = progress.rate / 1e6 if detail.startswith("bytes") else progress.rate
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"
        extras.append(f"{shown}{' MB' if detail.startswith('bytes') else ''}/s")
    if progress.eta_seconds is not None:
        extras.append(f"ETA {format_duration(progress.eta_seconds)}")
    return text + (f" ({', '.join(extras)})" if extras else "")
