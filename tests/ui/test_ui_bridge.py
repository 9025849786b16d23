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
