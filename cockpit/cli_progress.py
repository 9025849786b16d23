"""Showing :class:`~cockpit.engine.events.Progress` events in the CLI.

On a terminal, Rich's progress display (a bar per task with count, rate and ETA, on
stderr so ``--json`` output stays clean); elsewhere (a pipe, a CI log) the plain
periodic lines of :class:`cockpit.progress.PlainProgress`.
"""

from __future__ import annotations

import sys
from typing import TextIO

from cockpit.engine.events import Progress
from cockpit.progress import PlainProgress


class RichProgress:
    """Rich's live progress display; one bar per (task, detail), removed when done."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, TextColumn, TimeRemainingColumn

        self._bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
            # Redrawn on each event (a few a second) rather than by a refresh thread: the
            # process stays single-threaded, so `cockpit report` may fork its CSV writer.
            auto_refresh=False,
        )
        self._tasks: dict[tuple, int] = {}

    def __call__(self, progress: Progress) -> None:
        key = (progress.task, progress.detail)
        if key not in self._tasks:
            if not self._tasks:
                self._bars.start()
            detail = "MB" + progress.detail[len("bytes"):] if progress.detail.startswith("bytes") else progress.detail
            label = f"{progress.task.value} {detail}".strip()
            self._tasks[key] = self._bars.add_task(label, total=self._scaled(progress, progress.total) or None, rate="")
        unit = "MB/s" if progress.detail.startswith("bytes") else "/s"
        rate = self._scaled(progress, progress.rate)
        self._bars.update(self._tasks[key], completed=self._scaled(progress, progress.done),
                          rate=(f"{rate:,.0f} {unit}" if rate >= 10 else f"{rate:.1f} {unit}") if rate else "",
                          refresh=True)
        if progress.finished:
            self._bars.remove_task(self._tasks.pop(key))
            if not self._tasks:
                self._bars.stop()

    @staticmethod
    def _scaled(progress: Progress, value: float) -> float:
        return value / 1e6 if progress.detail.startswith("bytes") else value

    def close(self) -> None:
        if self._tasks:
            self._tasks.clear()
            self._bars.stop()


def terminal_progress(stream: TextIO | None = None):
    """The sink for this process: Rich bars on a terminal, plain periodic lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return RichProgress(stream) if callable(isatty) and isatty() else PlainProgress(stream)
