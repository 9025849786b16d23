"""Test helpers: collect events, wait for them without sleeping blindly."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from cockpit.engine.events import Event, RunFinished
from cockpit.engine.hooks import Hook

# Here rather than in conftest.py: tests/ui has a conftest of its own, and `from conftest
# import` would find whichever of the two was imported first.
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"

TIMEOUT = 120.0


class Recorder:
    """A listener that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type) -> list:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = TIMEOUT) -> Event:
        with self._cond:
            found = self._cond.wait_for(lambda: next((e for e in self.events if predicate(e)), None), timeout)
        if found is None:
            raise AssertionError(f"event not seen within {timeout}s; got {[type(e).__name__ for e in self.events]}")
        return found


class SendAt(Hook):
    """Sends commands from inside the loop right after iteration ``at`` -- deterministic timing."""

    def __init__(self, at: int, *commands):
        self.at = at
        self.commands = commands

    def after_step(self, trainer, outcome):
        if outcome.iter == self.at:
            for command in self.commands:
                trainer.send(command)


def run_until_finished(trainer, timeout: float = 600.0) -> tuple[Recorder, RunFinished]:
    """Start ``trainer``, record its events until ``RunFinished``, close it."""
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    finished = events.wait_for(lambda e: isinstance(e, RunFinished), timeout=timeout)
    trainer.close()
    return events, finished
