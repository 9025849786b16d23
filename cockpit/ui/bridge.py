"""Engine events -> Textual messages, without ever blocking the engine thread.

The engine's event bus calls :meth:`EngineBridge.__call__` from this listener's own
delivery thread (never the training thread) for every event. The bridge appends the event
to a locked buffer and, when needed, posts an :class:`EventsPending` doorbell
(``post_message`` is thread-safe); the app drains the whole buffer at once, in order, so no
event is lost.

Every doorbell wakes Textual's event loop, and on a 2-core machine each wake-up is GIL
time taken from the training thread. So the bridge rings at most once while a doorbell is
outstanding (the drain takes everything that came meanwhile), and rings for step records
at most once per ``min_interval`` (the app keeps it at its status bar's pace, or its
frame interval when that is shorter: a record cannot be shown sooner than the next
redraw, cockpit/ui/frame_budget.py): a step record that comes sooner waits in the
buffer, and one timer rings once for all that piled up when the interval is over. Every other event (state, errors, flags, command
acknowledgements) rings at once. Commands do not pass through here, so pause / LR still
take effect at the next iteration boundary. With ``log_every = 1`` on the tiny sample
(~16 steps/s) that is ~16 -> <= 10 doorbells a second; see tests/ui/test_ui_bridge.py.
Doorbells also coalesce through ``Message.can_replace`` when the UI is busy.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING, Callable

from textual.message import Message

from cockpit.engine.events import CheckpointSaved, Event, StepMetrics

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


def _timer(delay: float, callback: Callable[[], None]) -> None:
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()


class EngineBridge:
    """Subscribed to one engine link; buffers its events for the UI thread.

    ``clock`` and ``later`` (``later(delay, callback)``: run ``callback`` after ``delay``
    seconds on some thread) are injectable so tests count doorbells without real time.
    """

    def __init__(
        self,
        target: "MessagePump",
        link: "EngineLink",
        *,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], None] | None = None,
    ) -> None:
        self.target = target
        self.link = link
        self.generation = next(_generations)
        self.min_interval = min_interval
        self._clock = clock
        self._later = later or _timer
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self._bell_out = False
        """A doorbell is posted and not drained yet: its drain takes everything buffered."""
        self._armed = False
        """A delayed ring is scheduled for the step records that came too soon."""
        self._last_ring = -float("inf")
        self._ui_thread = threading.get_ident()
        """The bridge is built on the UI thread (the app's on_mount)."""
        self.doorbells = 0
        """Doorbells posted so far (each one wakes the UI's event loop)."""
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
            # A step delivered on the UI thread itself (a scripted engine) rings at once:
            # the loop is awake anyway, and a timer would only delay what it shows.
            step = isinstance(event, StepMetrics) and threading.get_ident() != self._ui_thread
            if self._bell_out or (step and self._armed):
                return
            wait = self._last_ring + self.min_interval - self._clock() if step else 0.0
            if wait > 0:
                self._armed = True
            else:
                self._bell_out = True
                self._last_ring = self._clock()
        if wait > 0:
            self._later(wait, self._ring_late)
        else:
            self._post()

    def _ring_late(self) -> None:
        with self._lock:
            self._armed = False
            if self._bell_out or not self._pending or self.detached:
                return
            self._bell_out = True
            self._last_ring = self._clock()
        self._post()

    def _post(self) -> None:
        self.doorbells += 1
        self.target.post_message(EventsPending(self))

    def drain(self) -> list[Event]:
        """Every buffered event, oldest first (UI thread)."""
        with self._lock:
            events, self._pending = self._pending, []
            self._bell_out = False
        return events

    def detach(self) -> None:
        """Ignore this link from now on (after a restart replaced it)."""
        self.detached = True
        self.drain()
