"""The control socket of a detached run: events out to every client, commands in.

:class:`ControlServer` subscribes to the trainer like any other listener. Each event is
numbered (its line number in ``events.jsonl``), encoded once, and put on every client's
bounded queue; a writer thread per client empties its queue into the socket. A client
that reads slowly or not at all therefore only ever costs its own queue: when the queue
is full the oldest step records are dropped first (they are the high-rate, superseded
kind), then the oldest of anything, and the client is told how many it missed. Nothing
the server does can block the engine.

A reader thread per client parses its commands and passes them to ``link.send`` under one
lock, so commands from several cockpits reach the engine in the order they arrived; the
engine's ``CommandAck`` events go to every client. A malformed, unknown or over-long
message gets an ``error`` reply and changes nothing.

At most ``MAX_CLIENTS`` cockpits are connected at once; a connection beyond that gets an
``error`` reply and is closed by the accept loop, without a thread of its own, so no
number of idle connections can slow the run or delay its stop.

The socket is bound under umask 0o177 (so it is 0600 from its first instant) inside a 0700
folder, and each connection's peer uid (SO_PEERCRED) must be the owner's.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

from cockpit.runfiles import layout
from cockpit.engine.commands import Command
from cockpit.engine.events import Event, RunFinished, RunState, StateChanged, StepMetrics
from cockpit.engine.link import EngineLink
from cockpit.mailbox import Mailbox, pump
from cockpit.remote import protocol
from cockpit.remote.runs import count_lines, socket_path_for

DEFAULT_BACKLOG = 2000
"""Messages a client may fall behind by before it starts missing events."""
FLUSH_TIMEOUT = 5.0
"""On close, how long the clients together get to take their last events and ``bye``."""
MAX_CLIENTS = 32
"""Connected cockpits at most; more are refused with a message and cost no thread. Each
admitted client has two threads, so a buggy script opening thousands of connections
cannot starve the training thread (or the signal handler) of the interpreter."""
HANDSHAKE_TIMEOUT = 5.0
"""How long the accept loop waits on one connection (peer check, refusal message), so a
peer that never reads cannot hold up everyone else's connection."""


class ServerError(Exception):
    """The socket cannot be served (path in use, permissions); ``str()`` is one line."""


def peer_uid(conn: socket.socket) -> int | None:
    """The connecting process's uid, where the platform says (Linux SO_PEERCRED)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid


class _Client:
    """One connected cockpit: a bounded outbox with its writer thread, and a reader thread."""

    def __init__(self, server: "ControlServer", conn: socket.socket, number: int, max_backlog: int):
        self.server = server
        self.conn = conn
        self.number = number
        # Cut back to three quarters, so a stalled client is not re-cut on every event; step
        # records go first, then the oldest of anything (a client's memory stays bounded).
        self.outbox: Mailbox[bytes] = Mailbox(max_backlog, keep=max_backlog * 3 // 4, drop_any=True)
        self.writer = threading.Thread(target=self._write_loop, name=f"cockpit-remote-w{number}", daemon=True)
        self.reader = threading.Thread(target=self._read_loop, name=f"cockpit-remote-r{number}", daemon=True)

    def start(self) -> None:
        self.writer.start()
        self.reader.start()

    def put(self, data: bytes, droppable: bool = False) -> None:
        self.outbox.put(data, droppable)

    def _send(self, data: bytes, missed: int) -> None:
        if missed:
            self.conn.sendall(protocol.encode("missed", count=missed))
        self.conn.sendall(data)

    def _write_loop(self) -> None:
        try:
            pump(self.outbox, self._send)
        except OSError:
            pass  # the client went away (EPIPE, ECONNRESET): its reader ends it too
        finally:
            self.close()

    def _read_loop(self) -> None:
        reader = protocol.LineReader(self.conn.recv, protocol.MAX_COMMAND_BYTES)
        try:
            for line in reader:
                if line.overflow:
                    self.reply_error(f"message too long ({line.overflow} bytes, at most {protocol.MAX_COMMAND_BYTES})")
                    continue
                if not line.data.strip():
                    continue
                try:
                    data = protocol.decode(line.data, allowed=protocol.CLIENT_TYPES, max_bytes=protocol.MAX_COMMAND_BYTES)
                    msg_id, command = protocol.decode_command(data)
                except protocol.ProtocolError as error:
                    self.reply_error(str(error), error.msg_id)
                    continue
                self.server.command(self, msg_id, command)
        except OSError:
            pass
        finally:
            self.close()

    def reply_error(self, message: str, msg_id: str | None = None) -> None:
        self.put(protocol.encode("error", id=msg_id, message=message))

    def drain(self, timeout: float) -> None:
        """Send what is queued (then stop), waiting at most ``timeout``."""
        self.outbox.finish()
        self.writer.join(timeout)
        self.close()

    def close(self) -> None:
        if not self.outbox.abort():
            return
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        self.server._forget(self)


class ControlServer:
    """Serves one engine's events and commands on a Unix socket in its run directory.

    Create it and call :meth:`start` *before* the engine starts, so that its event numbers
    match the lines of ``events.jsonl`` (a client replays the file up to the number in its
    ``hello``, then takes live events from there).
    """

    def __init__(
        self,
        link: EngineLink,
        run_dir: Path,
        socket_path: Path | None = None,
        *,
        max_backlog: int = DEFAULT_BACKLOG,
        allowed_uid: int | None = None,
        max_clients: int = MAX_CLIENTS,
    ):
        self.link = link
        self.max_clients = max_clients
        self.refused = 0
        """Connections turned away because ``max_clients`` were connected."""
        self.run_dir = Path(run_dir)
        self.socket_path = Path(socket_path) if socket_path is not None else socket_path_for(self.run_dir)
        self.max_backlog = max_backlog
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self._lock = threading.Lock()
        self._command_lock = threading.Lock()
        self._clients: list[_Client] = []
        self._numbers = 0
        self._seq = count_lines(self.run_dir / layout.EVENTS)
        self._state = link.state
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._closed = False

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def start(self) -> None:
        """Bind the socket (owner-only) and start listening; subscribes to the link."""
        path = self.socket_path
        if path.exists() or path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left behind by a process that died
            else:
                raise ServerError(f"{path} is in use by another live run")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # umask, not a chmod after bind: the socket is never reachable with wider permissions.
        old = os.umask(0o177)
        try:
            listener.bind(str(path))
        except OSError as error:
            listener.close()
            raise ServerError(f"cannot create the control socket {path}: {error.strerror}") from None
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        listener.listen(16)
        self._listener = listener
        self.link.subscribe(self._on_event)
        self._accepter = threading.Thread(target=self._accept_loop, name="cockpit-remote-accept", daemon=True)
        self._accepter.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                self._admit(conn)
            except OSError:
                conn.close()

    def _refuse(self, conn: socket.socket, message: str) -> None:
        try:
            conn.sendall(protocol.encode("error", id=None, message=message))
        except OSError:
            pass  # the peer is gone or not reading: refused all the same
        conn.close()

    def _admit(self, conn: socket.socket) -> None:
        conn.settimeout(HANDSHAKE_TIMEOUT)
        uid = peer_uid(conn)
        if uid is not None and uid != self.allowed_uid:
            self._refuse(conn, f"permission denied: this run belongs to uid {self.allowed_uid}")
            return
        with self._lock:
            full = len(self._clients) >= self.max_clients
            if full:
                self.refused += 1
        if full:
            self._refuse(conn, f"too many connections: {self.max_clients} cockpits are attached to this run; "
                               "close one and try again")
            return
        # Admitted: the client's own threads block on it (each bounded by its queue).
        conn.settimeout(None)
        with self._lock:
            if self._closed:
                conn.close()
                return
            self._numbers += 1
            client = _Client(self, conn, self._numbers, self.max_backlog)
            # Registered under the same lock that numbers events: every event after
            # ``seq`` reaches this client's queue, every one before is in the file.
            client.put(protocol.encode(
                "hello", seq=self._seq, run_dir=str(self.run_dir.resolve()), pid=os.getpid(), state=self._state.value,
            ))
            self._clients.append(client)
        client.start()

    def _forget(self, client: _Client) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def _on_event(self, event: Event) -> None:
        """The bus listener: number, encode once, enqueue for everyone. Never blocks on a client."""
        with self._lock:
            seq = self._seq
            self._seq += 1
            if isinstance(event, (StateChanged, RunFinished)):
                self._state = RunState(event.state)
            data = protocol.encode_event(seq, event)
            clients = list(self._clients)
        droppable = isinstance(event, StepMetrics)
        for client in clients:
            client.put(data, droppable)

    def command(self, client: _Client, msg_id: str | None, command: Command) -> None:
        """A client's command: queued for the engine in arrival order, ``ok`` to the sender."""
        if self._state.is_terminal:
            client.reply_error(f"the run has ended ({self._state.value}); {command.name} not applied", msg_id)
            return
        with self._command_lock:
            self.link.send(command)
            client.put(protocol.encode("ok", id=msg_id, command=command.name))

    def close(self, reason: str = "the run ended") -> None:
        """Stop listening, give every client its last events and a ``bye``, remove the socket."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._clients)
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        try:
            self.socket_path.unlink()
        except OSError:
            pass
        for client in clients:
            client.put(protocol.encode("bye", reason=reason))
        # One deadline for all: with many clients, a per-client wait would hold up the end of
        # the run (and a SIGTERM) for minutes.
        deadline = time.monotonic() + FLUSH_TIMEOUT
        for client in clients:
            client.drain(max(0.0, deadline - time.monotonic()))
        if self._accepter is not None:
            self._accepter.join(1.0)
