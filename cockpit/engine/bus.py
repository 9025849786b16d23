"""Fan-out of engine events to listeners without ever blocking the training loop.

Each listener gets its own queue and its own daemon thread, so a slow listener only
delays itself. ``publish`` is a non-blocking ``put``. When a listener falls behind by more
than ``max_backlog`` events, the oldest *step* events in its backlog are dropped (they are
the high-rate, superseded kind); every other event is kept, and the listener is told how
many steps it missed through a ``RunWarning(category="listener_lag")``. A listener that
raises is reported through ``on_listener_error`` and keeps receiving events.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable

from cockpit.engine.events import Event, RunWarning, StepMetrics

Listener = Callable[[Event], None]


class _Mailbox:
    """One listener's backlog and the thread that empties it."""

    def __init__(self, listener: Listener, max_backlog: int, on_error: Callable[[Listener, BaseException], None]):
        self.listener = listener
        self.max_backlog = max_backlog
        self.on_error = on_error
        self.items: collections.deque[Event] = collections.deque()
        self.cond = threading.Condition()
        self.closed = False
        self.dropped_steps = 0
        self.thread = threading.Thread(target=self._loop, name=f"cockpit-listener-{id(listener):x}", daemon=True)
        self.thread.start()

    def put(self, event: Event) -> None:
        with self.cond:
            self.items.append(event)
            if len(self.items) > self.max_backlog:
                self._shed()
            self.cond.notify()

    def _shed(self) -> None:
        # Keep every state/eval/flag event; only superseded step records may go.
        excess = len(self.items) - self.max_backlog // 2
        kept: collections.deque[Event] = collections.deque()
        for item in self.items:
            if excess > 0 and isinstance(item, StepMetrics):
                excess -= 1
                self.dropped_steps += 1
                continue
            kept.append(item)
        self.items = kept

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.items and not self.closed:
                    self.cond.wait()
                if not self.items and self.closed:
                    return
                event = self.items.popleft()
                dropped, self.dropped_steps = self.dropped_steps, 0
            try:
                if dropped:
                    self.listener(RunWarning(f"listener fell behind; {dropped} step records dropped", category="listener_lag"))
                self.listener(event)
            except BaseException as error:  # noqa: BLE001 - a listener must never kill the run
                self.on_error(self.listener, error)


class EventBus:
    """Publish events to any number of listeners, each on its own thread."""

    def __init__(self, max_backlog: int = 10_000, on_listener_error: Callable[[Listener, BaseException], None] | None = None):
        self._max_backlog = max_backlog
        self._on_error = on_listener_error or (lambda listener, error: None)
        self._mailboxes: list[_Mailbox] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._mailboxes.append(_Mailbox(listener, self._max_backlog, self._on_error))

    def publish(self, event: Event) -> None:
        with self._lock:
            boxes = list(self._mailboxes)
        for box in boxes:
            box.put(event)

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver what is queued, then stop the listener threads."""
        with self._lock:
            boxes = list(self._mailboxes)
        for box in boxes:
            box.close()
        for box in boxes:
            if box.thread is not threading.current_thread():
                box.thread.join(timeout)
