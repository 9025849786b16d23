"""Helpers for the remote tests: a scripted engine that writes events.jsonl, waiting, raw sockets."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

from cockpit.engine.commands import Command
from cockpit.engine.events import CommandAck, Event, RunState, StateChanged, StepMetrics
from cockpit.engine.rundir import RunDirWriter

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def wait_for(condition, timeout: float = 120.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


def step(i: int) -> StepMetrics:
    return StepMetrics(iter=i, epoch=0, lr=0.01, losses={"loss_classifier": 1.0 / (i + 1)}, loss=1.0 / (i + 1))


class FakeEngine:
    """An EngineLink that publishes what a test tells it to, through a real RunDirWriter.

    Like the trainer, every listener (the writer first) sees each event in order; commands
    are recorded and acknowledged with a ``CommandAck`` event.
    """

    def __init__(self, run_dir: Path):
        self._listeners = []
        self._state = RunState.RUNNING
        self.run_dir = run_dir
        self.sent: list[Command] = []
        self._lock = threading.Lock()
        self.writer = RunDirWriter(run_dir)
        self.subscribe(self.writer)

    @property
    def state(self) -> RunState:
        return self._state

    def subscribe(self, listener) -> None:
        self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, StateChanged):
                self._state = event.state
            for listener in self._listeners:
                listener(event)

    def send(self, command: Command) -> None:
        self.sent.append(command)
        self.publish(CommandAck(command=command.name, iter=0))

    def start(self) -> None:
        pass

    def close(self, timeout=None) -> None:
        self.writer.close()


class RawClient:
    """A bare protocol client: send lines, read decoded messages."""

    def __init__(self, path: Path, timeout: float = 30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")
        self.seen: list[dict] = []
        """Every message read so far, in order."""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> dict | None:
        line = self.file.readline()
        if not line:
            return None
        message = json.loads(line)
        self.seen.append(message)
        return message

    def read_until(self, predicate, limit: int = 100000) -> dict:
        for _ in range(limit):
            message = self.read()
            if message is None:
                raise AssertionError("connection closed before the expected message")
            if predicate(message):
                return message
        raise AssertionError("expected message not seen")

    def close(self) -> None:
        self.file.close()
        self.sock.close()
