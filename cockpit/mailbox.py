"""One bounded mailbox that drops superseded step records first.

Both the event bus (one mailbox per in-process listener) and the control socket (one per
connected cockpit) hand events to a consumer that may read slowly or not at all. Neither
may block the engine, so each consumer gets a :class:`Mailbox`: ``put`` never blocks, and
when the backlog passes ``max_backlog`` it is cut back to ``keep`` items by dropping the
oldest *droppable* items (step records: high-rate and superseded by the next one). With
``drop_any`` the oldest of anything goes next, for a consumer whose memory must stay
bounded whatever arrives. The consumer learns how many it missed from :meth:`get`.

Torch-free and engine-free: the remote package uses it too.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """A bounded, thread-safe backlog: producers ``put``, one consumer ``get``s."""

    def __init__(self, max_backlog: int, *, keep: int | None = None, drop_any: bool = False):
        self.max_backlog = max_backlog
        self.keep = max_backlog // 2 if keep is None else keep
        """Backlog size after a cut, below ``max_backlog`` so a stalled consumer is not cut on every put."""
        self.drop_any = drop_any
        self._items: collections.deque[tuple[T, bool]] = collections.deque()
        self._cond = threading.Condition()
        self._missed = 0
        self._finishing = False
        self._aborted = False

    def put(self, item: T, droppable: bool = False) -> bool:
        """Queue ``item``; False (and nothing queued) once the mailbox is finishing or aborted."""
        with self._cond:
            if self._finishing or self._aborted:
                return False
            self._items.append((item, droppable))
            if len(self._items) > self.max_backlog:
                self._shed()
            self._cond.notify()
            return True

    def _shed(self) -> None:
        excess = len(self._items) - self.keep
        kept: collections.deque[tuple[T, bool]] = collections.deque()
        for entry in self._items:
            if excess > 0 and entry[1]:
                excess -= 1
                self._missed += 1
                continue
            kept.append(entry)
        while self.drop_any and len(kept) > self.keep:
            kept.popleft()
            self._missed += 1
        self._items = kept

    def get(self) -> tuple[T, int] | None:
        """The next item and how many were dropped before it; None when there will be no more.

        Blocks while the backlog is empty. After :meth:`finish` the backlog is still
        delivered; after :meth:`abort` nothing is.
        """
        with self._cond:
            while not self._items and not self._finishing and not self._aborted:
                self._cond.wait()
            if self._aborted or not self._items:
                return None
            item, _ = self._items.popleft()
            missed, self._missed = self._missed, 0
            return item, missed

    def finish(self) -> None:
        """Take nothing more; :meth:`get` delivers what is queued, then returns None."""
        with self._cond:
            self._finishing = True
            self._cond.notify_all()

    def abort(self) -> bool:
        """Deliver nothing more. False when it was already aborted."""
        with self._cond:
            if self._aborted:
                return False
            self._aborted = True
            self._cond.notify_all()
            return True

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def pump(mailbox: Mailbox[T], deliver: Callable[[T, int], None]) -> None:
    """Hand every item to ``deliver(item, missed)`` until the mailbox says there will be no more."""
    while True:
        taken = mailbox.get()
        if taken is None:
            return
        deliver(*taken)
