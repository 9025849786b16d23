"""The run-directory writer: the listener that records a run's events and metrics.

File names, the value encoding and the locking live in :mod:`cockpit.runfiles` (one codec
for the engine, the report, ``cockpit ls`` and the remote side); this module only maps
events to the records of ``events.jsonl`` and ``metrics.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cockpit.engine.events import EvalResult, Event, StepMetrics
from cockpit.runfiles import records
from cockpit.runfiles.codec import dumps
from cockpit.runfiles.jsonl import JsonlAppender
from cockpit.runfiles.layout import (  # re-exported: the names the engine writes under
    BEST,
    CHECKPOINTS,
    CONFIG,
    EFFECTIVE,
    EVENTS,
    LAST,
    METRICS,
    PREDICTIONS,
    PREFLIGHT,
    PREVIEWS,
    create,
    newest,
)

__all__ = [
    "BEST", "CHECKPOINTS", "CONFIG", "EFFECTIVE", "EVENTS", "LAST", "METRICS", "PREDICTIONS", "PREFLIGHT", "PREVIEWS",
    "RunDirWriter", "create", "dumps", "eval_record", "newest", "train_record",
]


def train_record(event: StepMetrics) -> dict[str, Any]:
    """A ``metrics.jsonl`` training line (see :func:`cockpit.runfiles.records.train_record`)."""
    return records.train_record(event.to_dict())


def eval_record(event: EvalResult) -> dict[str, Any]:
    """A ``metrics.jsonl`` evaluation line."""
    return records.eval_record(event.to_dict())


class RunDirWriter:
    """Listener that appends every event to ``events.jsonl`` and metrics to ``metrics.jsonl``."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._events = JsonlAppender(self.run_dir / EVENTS)
        self._metrics = JsonlAppender(self.run_dir / METRICS)

    def __call__(self, event: Event) -> None:
        data = event.to_dict()
        self._events.write(data)
        if isinstance(event, StepMetrics):
            self._metrics.write(records.train_record(data))
        elif isinstance(event, EvalResult):
            self._metrics.write(records.eval_record(data))

    def close(self) -> None:
        self._events.close()
        self._metrics.close()
