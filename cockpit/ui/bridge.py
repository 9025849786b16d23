"""Engine events -> Textual messages, without ever blocking the engine thread.

The engine calls :meth:`EngineBridge.__call__` from its own thread for every event. The
bridge appends the event to a locked buffer and posts an :class:`EventsPending` doorbell
(``post_message`` is thread-safe). Doorbells coalesce through ``Message.can_replace``:
however many steps arrive while the UI is busy, the app handles one doorbell and drains
the whole buffer at once, in order -- no event is lost, and the message queue never
floods (the memray/toolong pattern, adapted to an incremental stream).
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from textual.message import Message

from cockpit.engine.events import CheckpointSaved, Event

if TYPE_CHECKING:  # pragma: no cover
    from textual.message_pump import MessagePump

    from cockpit.engine.link import EngineLink

_generations = itertools.count(1)


class EventsPending(Message):
    """Engine events are waiting in ``bridge``; the receiver calls ``bridge.drain()``."""

    def __init__(self, bridge: "EngineBridge") -> None:
        super().__init__()
        self.bridge = bridge

    def can_replace(self, message: Message) -> bool:
        # A newer doorbell from the same bridge makes this one redundant: draining once
        # takes every buffered event.
        return isinstance(message, EventsPending) and message.bridge is self.bridge


class EngineBridge:
    """Subscribed to one engine link; buffers its events for the UI thread."""

    def __init__(self, target: "MessagePump", link: "EngineLink") -> None:
        self.target = target
        self.link = link
        self.generation = next(_generations)
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self.last_checkpoint: str | None = None
        """Path of the newest checkpoint, kept here too so a restart can read it off the UI thread."""
        self.detached = False
        link.subscribe(self)

    def __call__(self, event: Event) -> None:
        """The engine-side listener: O(1), never blocks on the UI."""
        if self.detached:
            return
        if isinstance(event, CheckpointSaved):
            self.last_checkpoint = event.path
        with self._lock:
            self._pending.append(event)
        self.target.post_message(EventsPending(self))

    def drain(self) -> list[Event]:
        """Every buffered event, oldest first (UI thread)."""
        with self._lock:
            events, self._pending = self._pending, []
        return events

    def detach(self) -> None:
        """Ignore this link from now on (after a restart replaced it)."""
        self.detached = True
        self.drain()
