"""Running a trainer from the CLI: the request, the headless loop, signals.

Building the trainer (with the diagnostics attached) is :mod:`cockpit.assembly`'s job.

``run_headless`` keeps the main thread free for signal handlers: SIGINT, SIGTERM and
SIGHUP ask the trainer to stop at the next iteration boundary, saving a checkpoint; a
second Ctrl-C exits at once.

Under ``torchrun`` every rank builds a trainer here; the ranks other than 0 run
headless and print nothing (``engine/distributed.py``).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from cockpit.config import Config
from cockpit.engine.commands import Stop
from cockpit.engine.dist_context import DistContext, detect
from cockpit.engine.faults import Injection
from cockpit.engine.headless import HeadlessPrinter
from cockpit.engine.events import RunState
from cockpit.runfiles import layout

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.trainer import Trainer


@dataclass
class RunRequest:
    """What the user asked ``cockpit run`` for."""

    config: Config
    config_path: Path
    resume: str | None = None
    injections: list[Injection] = field(default_factory=list)
    preflight: dict | None = None
    dist: DistContext = field(default_factory=detect)
    """This process's place in a ``torchrun`` job (a single process outside one)."""


def run_headless(trainer: "Trainer", *, log_file: bool = True, on_close: Callable[[], None] | None = None) -> int:
    """Train to the end printing log lines; returns the exit code.

    ``log_file``: also append the lines to ``RUN_DIR/cockpit.log`` (a detached run's stdout
    already is that file). ``on_close`` runs once the trainer has closed, before the
    signal handlers are restored.
    """
    printer = None
    if trainer.run_dir is not None:
        printer = HeadlessPrinter(sys.stdout, log_file=trainer.run_dir / layout.LOG if log_file else None)
        trainer.subscribe(printer)
    received: list[int] = []

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        if received and signum == signal.SIGINT:
            print("cockpit: second interrupt, exiting now", file=sys.stderr, flush=True)
            os._exit(130)
        received.append(signum)
        name = signal.Signals(signum).name
        if trainer.is_main:
            print(f"cockpit: {name} received, stopping at the next iteration and saving a checkpoint", flush=True)
        trainer.send(Stop(save=True, reason=f"signal {name}"))

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        trainer.start()
        # join() with a timeout keeps the main thread returning to the interpreter, where
        # Python runs signal handlers.
        while trainer.is_alive():
            trainer.join(0.5)
    finally:
        trainer.close()
        if on_close is not None:
            on_close()
        if printer is not None:
            printer.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if trainer.state is RunState.FAILED:
        if not trainer.is_main:
            return 1
        # The one line that says why (the log lines above only say where it stopped).
        print(f"cockpit: run failed: {trainer.failure_reason or 'see the log above'}", file=sys.stderr)
        return 1
    return 0
