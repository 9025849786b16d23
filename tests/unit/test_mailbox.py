"""The one bounded mailbox (event bus listeners and socket clients): never blocks, drops step records first."""

from __future__ import annotations

import threading

from cockpit.mailbox import Mailbox, pump


def drain(box: Mailbox) -> list:
    box.finish()
    taken = []
    pump(box, lambda item, missed: taken.append((item, missed)))
    return taken


def test_droppable_items_go_first_and_the_consumer_is_told_how_many():
    box: Mailbox[str] = Mailbox(6, keep=3)
    for i in range(7):
        box.put(f"step{i}", droppable=True) if i % 2 else box.put(f"state{i}")
    # 7 > 6: cut back to 3 by dropping the oldest step records only.
    taken = drain(box)
    assert [item for item, _ in taken] == ["state0", "state2", "state4", "state6"]
    assert taken[0][1] == 3 and all(missed == 0 for _, missed in taken[1:])


def test_without_drop_any_other_items_are_never_dropped():
    box: Mailbox[str] = Mailbox(4, keep=2)
    for i in range(10):
        box.put(f"state{i}")
    assert [item for item, _ in drain(box)] == [f"state{i}" for i in range(10)]


def test_drop_any_bounds_memory_whatever_arrives():
    box: Mailbox[str] = Mailbox(4, keep=3, drop_any=True)
    for i in range(10):
        box.put(f"state{i}")
    taken = drain(box)
    assert len(taken) <= 4 and taken[-1][0] == "state9" and sum(m for _, m in taken) + len(taken) == 10


def test_finish_delivers_the_backlog_abort_delivers_nothing_and_put_after_either_is_refused():
    box: Mailbox[int] = Mailbox(10)
    box.put(1)
    box.finish()
    assert box.put(2) is False
    assert box.get() == (1, 0) and box.get() is None
    other: Mailbox[int] = Mailbox(10)
    other.put(1)
    assert other.abort() is True and other.abort() is False
    assert other.get() is None and other.put(3) is False


def test_get_blocks_until_an_item_arrives():
    box: Mailbox[int] = Mailbox(10)
    got = []
    consumer = threading.Thread(target=lambda: got.append(box.get()))
    consumer.start()
    box.put(5)
    consumer.join(10)
    assert got == [(5, 0)]
