"""The bridge: a flood of events from an engine thread coalesces into few UI wake-ups, losing none."""

from __future__ import annotations

import threading

from ui_support import settle
from fake_engine import T0, step_event


async def test_flood_from_a_thread_coalesces_without_losing_events(make_app):
    app, fake = make_app(events=[])
    drains: list[int] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        drain = app.bridge.drain

        def counting_drain():
            events = drain()
            drains.append(len(events))
            return events

        app.bridge.drain = counting_drain
        thread = threading.Thread(
            target=lambda: [fake.emit(step_event(i, t=T0 + i)) for i in range(1, 3001)], name="fake-engine"
        )
        thread.start()
        thread.join()  # the UI loop is blocked meanwhile: 3000 doorbells pile up
        await settle(pilot)
        assert sum(drains) == 3000
        assert len([n for n in drains if n]) <= 3
        assert len(drains) < 50  # coalesced by can_replace, not one handler call per event
        assert app.model.iter == 3000 and len(app.model.losses) == 3000
        assert app.model.its == 1.0  # from event times: one iteration per second


async def test_events_of_a_replaced_engine_are_ignored(make_app):
    from cockpit.ui.bridge import EngineBridge

    app, fake = make_app(events=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        old = app.bridge
        app.bridge = EngineBridge(app, fake)  # as after a restart
        old(step_event(2))
        await settle(pilot)
        assert app.model.iter == 0


class _PromptUI:
    """A stand-in for the app that drains at once on every doorbell (the UI is never the bottleneck)."""

    def __init__(self):
        self.bridge = None
        self.received: list = []

    def post_message(self, message) -> None:
        self.received.extend(message.bridge.drain())


class _Link:
    def subscribe(self, listener) -> None:
        pass


class _FakeTime:
    """A clock and a timer queue that only move when the test says so."""

    def __init__(self):
        self.now = 0.0
        self.due: list = []

    def clock(self) -> float:
        return self.now

    def later(self, delay: float, callback) -> None:
        self.due.append((self.now + delay, callback))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        ready = [item for item in self.due if item[0] <= self.now]
        self.due = [item for item in self.due if item[0] > self.now]
        for _, callback in sorted(ready, key=lambda item: item[0]):
            callback()


def _fed_from_engine_thread(bridge, events, fake_time, spacing):
    def feed():
        for event in events:
            fake_time.advance(spacing)
            bridge(event)
        fake_time.advance(1.0)  # the run pauses: the last records still arrive

    thread = threading.Thread(target=feed, name="cockpit-listener")
    thread.start()
    thread.join()


def test_step_records_ring_at_most_once_per_interval_and_none_is_lost():
    from cockpit.ui.bridge import EngineBridge

    ui, fake_time = _PromptUI(), _FakeTime()
    bridge = EngineBridge(ui, _Link(), min_interval=0.1, clock=fake_time.clock, later=fake_time.later)
    events = [step_event(i, t=T0 + i) for i in range(1, 1001)]
    # 1,000 steps at 60 steps a second (log_every = 1 on the tiny sample): 16.7 s of training.
    _fed_from_engine_thread(bridge, events, fake_time, spacing=1 / 60)
    assert [e.iter for e in ui.received] == list(range(1, 1001))
    # Before batching every event rang: 1,000 doorbells. Now at most one per 0.1 s (+ the first).
    assert bridge.doorbells <= 1000 / 60 / 0.1 + 1
    assert bridge.doorbells >= 100  # and the panes still hear every 0.1 s


def test_events_other_than_step_records_ring_at_once():
    from cockpit.engine.events import RunState, StateChanged
    from cockpit.ui.bridge import EngineBridge

    ui, fake_time = _PromptUI(), _FakeTime()
    bridge = EngineBridge(ui, _Link(), min_interval=0.1, clock=fake_time.clock, later=fake_time.later)
    state = StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="paused by user", iter=3)
    def feed():
        for event in (step_event(1), step_event(2), state):
            fake_time.advance(0.001)
            bridge(event)

    thread = threading.Thread(target=feed, name="cockpit-listener")
    thread.start()
    thread.join()
    # The second step waits for the interval; the pause rings at once and takes both along.
    assert [type(e).__name__ for e in ui.received] == ["StepMetrics", "StepMetrics", "StateChanged"]
    assert bridge.doorbells == 2
    fake_time.advance(1.0)  # the armed ring finds nothing left to announce
    assert bridge.doorbells == 2


def test_steps_delivered_on_the_ui_thread_ring_at_once():
    from cockpit.ui.bridge import EngineBridge

    ui, fake_time = _PromptUI(), _FakeTime()
    bridge = EngineBridge(ui, _Link(), min_interval=0.1, clock=fake_time.clock, later=fake_time.later)
    for i in range(1, 4):
        bridge(step_event(i))  # a scripted engine on the UI thread: no timer, nothing delayed
    assert [e.iter for e in ui.received] == [1, 2, 3] and not fake_time.due
