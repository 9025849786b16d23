"""The narrow face an engine shows to its front-ends (TUI, headless printer, tests).

The TUI is written against :class:`EngineLink`, not the trainer, so it can be driven by
the real trainer, a scripted fake in tests, or (later) a socket to a detached run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from cockpit.engine.commands import Command
from cockpit.engine.events import Event, RunState

Listener = Callable[[Event], None]


class EngineLink(Protocol):
    """Events out, commands in."""

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event from now on (from the engine's thread)."""

    def send(self, command: Command) -> None:
        """Queue a command; it takes effect at the next iteration boundary. Never blocks."""

    def start(self) -> None:
        """Start training in the background."""

    def close(self, timeout: float | None = None) -> None:
        """Stop (saving a checkpoint) and wait for the engine thread to end."""

    @property
    def state(self) -> RunState: ...

    @property
    def run_dir(self) -> Path | None: ...
