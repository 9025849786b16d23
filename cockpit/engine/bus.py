"""Fan-out of engine events to listeners without ever blocking the training loop.

Each listener gets its own queue and its own daemon thread, so a slow listener only
delays itself. ``publish`` is a non-blocking ``put``. When a listener falls behind by more
than ``max_backlog`` events, the oldest *step* events in its backlog are dropped (they are
the high-rate, superseded kind; see :mod:`cockpit.mailbox`); every other event is kept, and
the listener is told how many steps it missed through a ``RunWarning`` of category
``LISTENER_LAG``. A listener that raises is reported through ``on_listener_error`` and keeps receiving events.
"""

from __future__ import annotations

import threading
from typing import Callable

from cockpit.engine.events import Event, RunWarning, StepMetrics, WarningCategory
from cockpit.engine.link import Listener
from cockpit.mailbox import Mailbox, pump


class _Delivery:
    """One listener's mailbox and the thread that empties it."""

    def __init__(self, listener: Listener, max_backlog: int, on_error: Callable[[Listener, BaseException], None]):
        self.listener = listener
        self.on_error = on_error
        # Cut back to half: every state/eval/flag event is kept, only step records may go.
        self.mailbox: Mailbox[Event] = Mailbox(max_backlog, keep=max_backlog // 2)
        self.thread = threading.Thread(target=self._loop, name=f"cockpit-listener-{id(listener):x}", daemon=True)
        self.thread.start()

    def put(self, event: Event) -> None:
        self.mailbox.put(event, droppable=isinstance(event, StepMetrics))

    def _deliver(self, event: Event, dropped: int) -> None:
        try:
            if dropped:
                self.listener(RunWarning(f"listener fell behind; {dropped} step records dropped", category=WarningCategory.LISTENER_LAG))
            self.listener(event)
        except BaseException as error:  # noqa: BLE001 - a listener must never kill the run
            self.on_error(self.listener, error)

    def _loop(self) -> None:
        pump(self.mailbox, self._deliver)


class EventBus:
    """Publish events to any number of listeners, each on its own thread."""

    def __init__(self, max_backlog: int = 10_000, on_listener_error: Callable[[Listener, BaseException], None] | None = None):
        self._max_backlog = max_backlog
        self._on_error = on_listener_error or (lambda listener, error: None)
        self._deliveries: list[_Delivery] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._deliveries.append(_Delivery(listener, self._max_backlog, self._on_error))

    def publish(self, event: Event) -> None:
        with self._lock:
            deliveries = list(self._deliveries)
        for delivery in deliveries:
            delivery.put(event)

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver what is queued, then stop the listener threads."""
        with self._lock:
            deliveries = list(self._deliveries)
        for delivery in deliveries:
            delivery.mailbox.finish()
        for delivery in deliveries:
            if delivery.thread is not threading.current_thread():
                delivery.thread.join(timeout)
