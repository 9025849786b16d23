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


def test_frozen_garbage_is_out_of_reach_until_thawed():
    objects = LongLivedObjects()
    cycle = _Cycle()
    alive = weakref.ref(cycle)
    objects.freeze()
    try:
        assert objects.frozen and gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert alive() is not None  # frozen: no collection looks at it
    finally:
        objects.thaw()
    assert not objects.frozen and gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_freeze_and_thaw_are_idempotent():
    objects = LongLivedObjects()
    objects.thaw()  # nothing of ours is frozen: nothing to undo
    assert gc.get_freeze_count() == 0
    objects.freeze()
    first = gc.get_freeze_count()
    objects.freeze()
    assert objects.frozen and gc.get_freeze_count() == first
    objects.thaw()
    objects.thaw()
    assert not objects.frozen and gc.get_freeze_count() == 0


async def test_the_first_step_record_freezes_and_quitting_thaws(make_app):
    started = script(last_iter=4)[:2]  # RunStarted, RUNNING: no step yet
    app, fake = make_app(events=started)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert not app.long_lived.frozen and gc.get_freeze_count() == 0
        fake.emit(step_event(1))
        await settle(pilot)
        assert app.long_lived.frozen and gc.get_freeze_count() > 0
    assert not app.long_lived.frozen and gc.get_freeze_count() == 0


async def test_a_restart_thaws_the_old_run_before_the_new_one_steps(make_app, preview_png):
    order: list[str] = []

    class Recording(LongLivedObjects):
        def freeze(self) -> None:
            if not self.frozen:
                order.append("freeze")
            super().freeze()

        def thaw(self) -> None:
            if self.frozen:
                order.append("thaw")
            super().thaw()

    def factory(config, checkpoint):
        order.append("new run built")
        return FakeEngine(script(run_dir="runs/shapes-2", image_path=str(preview_png), last_iter=20), run_dir="runs/shapes-2")

    app, fake = make_app(engine_factory=factory)
    app.long_lived = Recording()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert order == ["freeze"]
        app._restart(app.config)
        await settle(pilot)
        await settle(pilot)
        assert app.link is not fake and app.model.iter == 20
        assert order == ["freeze", "new run built", "thaw", "freeze"]
    assert order[-1] == "thaw" and gc.get_freeze_count() == 0
