"""The control-socket protocol: JSON lines with a version, a type and a bounded size.

Every message is one UTF-8 JSON object on one line, ``{"v": 1, "type": ..., ...}``.

Server to client:

- ``hello``: ``seq`` (the number of events already in ``events.jsonl`` when this client
  was registered; live events continue from there), ``run_dir``, ``pid``, ``state``.
- ``event``: ``seq`` and ``event`` (an event's ``to_dict()``).
- ``missed``: ``count`` -- this client fell behind and that many events were dropped.
- ``ok``: a command with ``id`` was queued for the engine (the engine's own
  ``CommandAck`` event, sent to every client, says whether it was applied).
- ``error``: ``message`` (and the offending ``id`` when known) -- a message was refused.
- ``bye``: ``reason`` -- the server is closing (the run ended).

Client to server: ``command`` with ``id`` (any short string) and ``command`` (a
command's ``to_dict()``).

The same event and command classes as in-process are used on both ends, so a client
sees exactly what the in-process cockpit sees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cockpit.engine.commands import Command, command_from_dict
from cockpit.engine.events import Event, event_from_dict
from cockpit.runfiles import codec
from cockpit.runfiles.codec import dumps

VERSION = 1
MAX_COMMAND_BYTES = 64 * 1024
"""Client messages are small commands; anything longer is refused unread."""
MAX_EVENT_BYTES = 16 * 1024 * 1024
"""A preview event carries box lists; far below this even for big images."""

SERVER_TYPES = frozenset({"hello", "event", "missed", "ok", "error", "bye"})
CLIENT_TYPES = frozenset({"command"})


class ProtocolError(ValueError):
    """A message that cannot be accepted; ``str()`` is the one-line reason sent back."""

    def __init__(self, message: str, msg_id: str | None = None):
        super().__init__(message)
        self.msg_id = msg_id


def encode(type_: str, **fields: Any) -> bytes:
    """One message as a newline-terminated line."""
    payload = {"v": VERSION, "type": type_, **fields}
    # The run files' codec writes NaN/Inf as strings: a NaN loss is exactly what a cockpit must show.
    return (dumps(payload) + "\n").encode("utf-8")


def encode_event(seq: int, event: Event) -> bytes:
    return encode("event", seq=seq, event=event.to_dict())


def encode_command(msg_id: str, command: Command) -> bytes:
    return encode("command", id=msg_id, command=command.to_dict())


def decode(line: bytes, *, allowed: frozenset[str], max_bytes: int) -> dict[str, Any]:
    """Parse and check one line; raises :class:`ProtocolError` with a reason to send back."""
    if len(line) > max_bytes:
        raise ProtocolError(f"message too long ({len(line)} bytes, at most {max_bytes})")
    try:
        data = codec.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(f"not a JSON object: {str(error).splitlines()[0]}") from None
    except RecursionError:  # e.g. 50,000 "[": json recurses once per level
        raise ProtocolError("not a JSON object: nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    msg_id = data.get("id") if isinstance(data.get("id"), str) else None
    if data.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {data.get('v')!r} (this side speaks {VERSION})", msg_id)
    if data.get("type") not in allowed:
        raise ProtocolError(f"unknown message type {data.get('type')!r}", msg_id)
    return data


def decode_command(data: dict[str, Any]) -> tuple[str | None, Command]:
    """The command inside a ``command`` message; raises :class:`ProtocolError`."""
    msg_id = data.get("id") if isinstance(data.get("id"), str) else None
    body = data.get("command")
    if not isinstance(body, dict) or not isinstance(body.get("command"), str):
        raise ProtocolError("a command message needs a 'command' object with a 'command' name", msg_id)
    try:
        return msg_id, command_from_dict(body)
    except KeyError:
        raise ProtocolError(f"unknown command {body.get('command')!r}", msg_id) from None
    except TypeError as error:
        raise ProtocolError(f"bad fields for {body.get('command')!r}: {error}", msg_id) from None


def decode_event(data: dict[str, Any]) -> Event:
    """The event inside an ``event`` message; raises :class:`ProtocolError`."""
    body = data.get("event")
    if not isinstance(body, dict):
        raise ProtocolError("an event message needs an 'event' object")
    try:
        return restore_floats(event_from_dict(body))
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(f"unreadable event {body.get('kind')!r}: {error}") from None


def restore_floats(event: Event) -> Event:
    """Undo the NaN/Inf-as-string of JSON in the event's float-typed fields.

    The in-process cockpit sees ``float("nan")``; an attached one must too, or a NaN loss
    would reach the plots as the string ``"nan"``.
    """
    changes = {}
    for f in dataclasses.fields(event):
        if "float" in str(f.type):
            value = getattr(event, f.name)
            restored = codec.decode(value)
            if restored is not value and restored != value:
                changes[f.name] = restored
    return dataclasses.replace(event, **changes) if changes else event


@dataclass(frozen=True)
class Line:
    """One line from :class:`LineReader`: the bytes, or ``overflow`` when it was too long."""

    data: bytes
    overflow: int = 0
    """Bytes in an over-long line (its content was discarded, not kept)."""


class LineReader:
    """Splits a byte stream into lines without ever holding more than ``max_bytes`` of one.

    An over-long line is skipped to its newline and reported as ``Line(b"", overflow=n)``,
    so one bad message costs its sender an error reply, not the connection.
    """

    def __init__(self, recv, max_bytes: int, chunk: int = 65536):
        self._recv = recv
        self._max = max_bytes
        self._chunk = chunk
        self._buffer = bytearray()
        self._skipping = 0

    def __iter__(self):
        return self

    def __next__(self) -> Line:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                if self._skipping:
                    skipped, self._skipping = self._skipping + len(line), 0
                    return Line(b"", overflow=skipped)
                return Line(line)
            if len(self._buffer) > self._max:
                self._skipping += len(self._buffer)
                self._buffer.clear()
            data = self._recv(self._chunk)
            if not data:
                raise StopIteration
            self._buffer.extend(data)
