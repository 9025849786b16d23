"""The cockpit keeps full garbage collections off its long-lived objects while a run steps,
and gives them back to the collector when it drops the run or exits."""

from __future__ import annotations

import gc
import weakref

from cockpit.ui.long_lived import LongLivedObjects
from fake_engine import FakeEngine, script, step_event
from ui_support import settle


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_frozen_garbage_is_out_of_reach_until_released():
    objects = LongLivedObjects()
    objects.arm()
    cycle = _Cycle()
    alive = weakref.ref(cycle)
    objects.freeze()
    try:
        assert objects.frozen and gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert alive() is not None  # frozen: no collection looks at it
    finally:
        objects.release()
    assert not objects.frozen and gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_freezing_needs_an_armed_run_and_happens_once():
    objects = LongLivedObjects()
    objects.freeze()  # no run attached yet
    assert not objects.frozen and gc.get_freeze_count() == 0
    objects.release()  # nothing of ours is frozen: nothing to undo
    objects.arm()
    objects.freeze()
    first = gc.get_freeze_count()
    objects.freeze()
    assert objects.frozen and gc.get_freeze_count() == first
    objects.release()
    objects.freeze()  # a late step record of the run being closed
    assert not objects.frozen and gc.get_freeze_count() == 0


class _Recording(LongLivedObjects):
    """Notes each freeze and release that changes something, in ``order``."""

    def __init__(self, order: list[str]) -> None:
        super().__init__()
        self.order = order

    def freeze(self) -> None:
        was = self.frozen
        super().freeze()
        if self.frozen and not was:
            self.order.append("freeze")

    def release(self) -> None:
        was = self.frozen
        super().release()
        if was and not self.frozen:
            self.order.append("release")


def _closing_notes(fake: FakeEngine, order: list[str]) -> None:
    close = fake.close

    def noted(*args, **kwargs):
        order.append(f"close (frozen objects: {gc.get_freeze_count()})")
        return close(*args, **kwargs)

    fake.close = noted


async def test_the_first_step_record_freezes_and_quitting_releases_before_the_engine_closes(make_app):
    started = script(last_iter=4)[:2]  # RunStarted, RUNNING: no step yet
    app, fake = make_app(events=started)
    order: list[str] = []
    app.long_lived = _Recording(order)
    _closing_notes(fake, order)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert order == [] and gc.get_freeze_count() == 0
        fake.emit(step_event(1))
        await settle(pilot)
        assert order == ["freeze"] and gc.get_freeze_count() > 0
        app.shutdown()
        await settle(pilot)
    # The engine's close runs gc.collect() for a DDP wrapper's cycles: nothing may be frozen then.
    assert order == ["freeze", "release", "close (frozen objects: 0)"]
    assert gc.get_freeze_count() == 0


async def test_a_restart_releases_the_old_run_before_closing_it_and_freezes_the_new_one(make_app, preview_png):
    order: list[str] = []

    def factory(config, checkpoint):
        order.append(f"new run built (frozen objects: {gc.get_freeze_count()})")
        return FakeEngine(script(run_dir="runs/shapes-2", image_path=str(preview_png), last_iter=20), run_dir="runs/shapes-2")

    app, fake = make_app(engine_factory=factory)
    app.long_lived = _Recording(order)
    _closing_notes(fake, order)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert order == ["freeze"]
        app._restart(app.config)
        await settle(pilot)
        await settle(pilot)
        assert app.link is not fake and app.model.iter == 20
        assert order == ["freeze", "release", "close (frozen objects: 0)", "new run built (frozen objects: 0)", "freeze"]
    assert order[-1] == "release" and gc.get_freeze_count() == 0
