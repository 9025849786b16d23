"""Durations as people read them: one formatter for the headless log, the cockpit and the report."""

from __future__ import annotations

import math


def format_duration(seconds: float | None, *, unknown: str = "--", long: bool = False) -> str:
    """``1h02m`` / ``3m05s`` / ``42s``; ``unknown`` for None, negative or non-finite input.

    ``long`` keeps the seconds at every scale and spaces the parts (``1h 02m 03s``), for a
    report that is read once rather than a status line that changes every second.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return unknown
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if long:
        if hours:
            return f"{hours}h {minutes:02d}m {secs:02d}s"
        return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
