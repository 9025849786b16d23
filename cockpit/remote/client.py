"""``RemoteLink``: the :class:`~cockpit.engine.link.EngineLink` of a run in another process.

It connects to the run's control socket, replays ``events.jsonl`` up to the event number
the server's ``hello`` names, then follows live events from the socket -- so a cockpit that
attaches late sees the whole run, once, in order. Commands go out through a writer thread
(``send`` never blocks the UI). ``close()`` only disconnects: the run goes on.

A run that has ended, or whose process is gone, opens read-only: the file is replayed and
nothing is connected; commands are answered with a refusing ``CommandAck``. A run that is
alive but has no socket (started without ``--detach``) is watched read-only: the link
follows its ``events.jsonl`` until it ends.
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
import time
from pathlib import Path

from cockpit.engine.commands import Command
from cockpit.engine.events import (
    CommandAck,
    Event,
    RunFinished,
    RunState,
    RunWarning,
    StateChanged,
    WarningCategory,
    event_from_dict,
)
from cockpit.engine.link import Listener
from cockpit.remote import protocol
from cockpit.runfiles import codec, layout
from cockpit.remote.runs import RunInfo, count_lines, inspect

REPLAY_WAIT = 5.0
"""How long to wait for the run's writer to flush lines the server already numbered."""


class AttachError(Exception):
    """The run cannot be attached to; ``str()`` is a one-line reason."""


def read_events(path: Path, limit: int | None = None) -> list[Event]:
    """The events in ``events.jsonl`` (the first ``limit`` lines); torn, too deep or unknown lines are skipped."""
    return read_events_counted(path, limit)[0]


def read_events_counted(path: Path, limit: int | None = None) -> tuple[list[Event], int]:
    """:func:`read_events` and how many non-blank lines were skipped."""
    events: list[Event] = []
    skipped = 0
    try:
        handle = open(path, "rb")
    except OSError:
        return events, 0
    with handle:
        for number, raw in enumerate(handle):
            if limit is not None and number >= limit:
                break
            event = _event_from_line(raw)
            if event is not None:
                events.append(event)
            elif raw.strip():
                skipped += 1
    return events, skipped


def _event_from_line(raw: bytes) -> Event | None:
    """One ``events.jsonl`` line as an event, or None when it cannot be one."""
    try:
        return protocol.restore_floats(event_from_dict(codec.loads(raw)))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class RemoteLink:
    """Attaches a cockpit to a run served by :class:`~cockpit.remote.server.ControlServer`."""

    def __init__(self, run_dir: Path, *, connect_timeout: float = 5.0):
        self._run_dir = Path(run_dir)
        self.info: RunInfo = inspect(self._run_dir)
        self._listeners: list[Listener] = []
        self._state = RunState.IDLE
        self._sock: socket.socket | None = None
        self._hello: dict | None = None
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._closing = False
        self._closed = threading.Event()
        self.connected = False
        self.read_only_reason = ""
        """Why this link cannot steer the run (empty while connected)."""
        self._connect(connect_timeout)

    # -- connecting -----------------------------------------------------------------------
    def _connect(self, timeout: float) -> None:
        info = self.info
        if not info.alive:
            self.read_only_reason = {
                "finished": "the run has finished",
                "stopped": "the run was stopped",
                "failed": "the run failed",
                "stale": "the run's process is gone (it did not finish)",
            }.get(info.state, f"the run is {info.state}")
            return
        if info.socket is None:
            self.read_only_reason = "the run was started without --detach: this cockpit watches it but cannot steer it"
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(info.socket))
            first = protocol.LineReader(sock.recv, protocol.MAX_EVENT_BYTES)
            line = next(first, None)
        except OSError as error:
            sock.close()
            raise AttachError(f"cannot connect to {info.socket}: {error.strerror or error}") from None
        if line is None or line.overflow:
            sock.close()
            raise AttachError(f"{info.socket}: the run closed the connection")
        try:
            hello = protocol.decode(line.data, allowed=protocol.SERVER_TYPES, max_bytes=protocol.MAX_EVENT_BYTES)
        except protocol.ProtocolError as error:
            sock.close()
            raise AttachError(f"{info.socket}: {error}") from None
        if hello["type"] == "error":
            sock.close()
            raise AttachError(f"the run refused the connection: {hello.get('message')}")
        if hello["type"] != "hello" or not isinstance(hello.get("seq"), int):
            sock.close()
            raise AttachError(f"{info.socket}: expected a hello, got {hello['type']!r}")
        sock.settimeout(None)
        self._sock = sock
        self._reader = first  # it may already hold bytes that followed the hello
        self._hello = hello
        self.connected = True

    # -- EngineLink -----------------------------------------------------------------------
    @property
    def state(self) -> RunState:
        return self._state

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    @property
    def read_only(self) -> bool:
        return not self.connected

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        """Replay the history and follow the run, on a background thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="cockpit-remote-link", daemon=True)
        self._thread.start()
        if self._sock is not None:
            self._writer = threading.Thread(target=self._write_loop, name="cockpit-remote-send", daemon=True)
            self._writer.start()

    def send(self, command: Command) -> None:
        if not self.connected or self._closing:
            why = self.read_only_reason or "not connected to the run"
            self._emit(CommandAck(command=command.name, iter=0, ok=False, message=f"read-only: {why}"))
            return
        self._outbox.put(protocol.encode_command(f"c{next(self._ids)}", command))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the history is replayed and the run's stream has ended; True when it has."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        """Disconnect (the run goes on) and wait for the link's threads."""
        self._closing = True
        self._closed.set()
        self._outbox.put(None)
        if self._writer is not None:
            self._writer.join(timeout)
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self.connected = False

    # -- threads --------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if isinstance(event, (StateChanged, RunFinished)):
            self._state = RunState(event.state)
        for listener in list(self._listeners):
            listener(event)

    def _replay(self, limit: int | None) -> None:
        path = self._run_dir / layout.EVENTS
        if limit is not None:
            # The server numbers an event as the writer appends it; give the writer a moment.
            deadline = time.monotonic() + REPLAY_WAIT
            while count_lines(path) < limit and time.monotonic() < deadline:
                time.sleep(0.05)
        events, skipped = read_events_counted(path, limit)
        for event in events:
            self._emit(event)
        if skipped:
            self._emit(RunWarning(f"skipped {skipped} unreadable line(s) of {layout.EVENTS} in the replay", category=WarningCategory.REMOTE))

    def _follow(self) -> None:
        if self._hello is None:
            if self.info.alive:
                self._tail()
            else:
                self._replay(None)
            return
        self._replay(self._hello["seq"])
        expected = self._hello["seq"]
        said_bye = False
        try:
            for line in self._reader:
                if line.overflow:
                    self._emit(RunWarning(f"dropped an over-long message ({line.overflow} bytes) from the run", category=WarningCategory.REMOTE))
                    continue
                try:
                    message = protocol.decode(line.data, allowed=protocol.SERVER_TYPES, max_bytes=protocol.MAX_EVENT_BYTES)
                    kind = message["type"]
                    if kind == "event":
                        event = protocol.decode_event(message)
                        seq = message.get("seq")
                        if isinstance(seq, int):
                            if seq < expected:
                                continue  # already replayed from the file
                            expected = seq + 1
                        self._emit(event)
                    elif kind == "missed":
                        self._emit(RunWarning(
                            f"this cockpit fell behind: {message.get('count')} events from the run were skipped",
                            category=WarningCategory.LISTENER_LAG,
                        ))
                    elif kind == "error":
                        self._emit(RunWarning(f"the run refused a message: {message.get('message')}", category=WarningCategory.REMOTE))
                    elif kind == "bye":
                        said_bye = True
                        self.read_only_reason = f"the run has ended ({message.get('reason') or 'bye'})"
                except protocol.ProtocolError as error:
                    self._emit(RunWarning(f"unreadable message from the run: {error}", category=WarningCategory.REMOTE))
        except OSError:
            pass
        finally:
            self.connected = False
        if not said_bye and not self._closing:
            self.read_only_reason = "the connection to the run was lost"
            self._emit(RunWarning(
                "lost the connection to the run; it may still be going (cockpit attach reconnects)",
                category=WarningCategory.CONNECTION,
            ))

    def _tail(self, interval: float = 0.5) -> None:
        """Follow ``events.jsonl`` of a run without a socket until it ends or its process is gone."""
        from cockpit.remote.runs import pid_alive, read_server_info

        path = self._run_dir / layout.EVENTS
        server = read_server_info(self._run_dir) or {}
        pid, start = server.get("pid"), server.get("process_start")
        offset, partial = 0, b""
        while True:
            alive = isinstance(pid, int) and pid_alive(pid, start)
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
            except OSError:
                data = b""
            offset += len(data)
            *lines, partial = (partial + data).split(b"\n")
            for raw in lines:
                event = _event_from_line(raw)
                if event is None:
                    continue
                self._emit(event)
                if isinstance(event, RunFinished):
                    return
            # Read once more after the process is seen gone: its last lines may have landed since.
            if not alive or self._closed.wait(interval):
                return

    def _write_loop(self) -> None:
        assert self._sock is not None
        while True:
            data = self._outbox.get()
            if data is None:
                return
            try:
                self._sock.sendall(data)
            except OSError:
                return
