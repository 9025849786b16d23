"""The redraw interval follows what a frame costs the UI thread (cockpit/ui/frame_budget.py)."""

from __future__ import annotations

import pytest

from cockpit.ui.frame_budget import FrameBudget


class FakeCpu:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cheap_frames_keep_the_configured_interval():
    cpu = FakeCpu()
    budget = FrameBudget(0.2, duty=0.03, cpu_clock=cpu)
    for _ in range(5):
        cpu.now += 0.004  # 4 ms of UI work per frame: 0.004 / 0.03 = 0.13 s < 0.2 s
        budget.frame_drawn()
    assert budget.interval == 0.2


def test_costly_frames_are_spaced_to_the_duty_and_stop_at_the_ceiling():
    cpu = FakeCpu()
    budget = FrameBudget(0.2, duty=0.03, ceiling=2.0, cpu_clock=cpu)
    budget.frame_drawn()
    for _ in range(30):
        cpu.now += 0.030  # 30 ms a frame: one frame a second keeps the UI at 3% of a core
        budget.frame_drawn()
    assert budget.interval == pytest.approx(1.0, rel=1e-3)
    for _ in range(30):
        cpu.now += 0.300
        budget.frame_drawn()
    assert budget.interval == 2.0


def test_one_slow_frame_does_not_stall_the_next_ones_for_long():
    cpu = FakeCpu()
    budget = FrameBudget(0.2, duty=0.03, cpu_clock=cpu)
    budget.frame_drawn()
    cpu.now += 0.005
    budget.frame_drawn()
    cpu.now += 0.060  # a resize: one expensive frame
    budget.frame_drawn()
    slowed = budget.interval
    for _ in range(6):
        cpu.now += 0.005
        budget.frame_drawn()
    assert slowed > 0.2 and budget.interval < slowed / 2


async def test_state_changes_are_drawn_at_once_while_step_records_wait_for_the_budget(make_app):
    from cockpit.engine.events import RunState, StateChanged
    from fake_engine import script, step_event

    started = script(last_iter=4)[:2]  # RunStarted, RUNNING
    app, fake = make_app(events=started, redraw_interval=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.pause()
        app.frame_budget = FrameBudget(600.0)  # frames are "expensive": the next one is far away
        app.flush_redraws()
        shown = lambda: str(app.status_bar.render())  # noqa: E731
        fake.emit(step_event(50))
        await pilot.pause()
        assert app.model.iter == 50 and "it 50" not in shown()  # waits for its frame
        fake.emit(StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="paused by user", iter=50))
        await pilot.pause()
        assert "PAUSED" in shown() and "it 50" in shown()  # drawn now, with what waited


async def test_the_status_bar_moves_between_frames_while_the_panes_wait(make_app):
    from fake_engine import script, step_event

    started = script(last_iter=4)[:2]  # RunStarted, RUNNING
    app, fake = make_app(events=started, redraw_interval=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.pause()
        app.frame_budget = FrameBudget(600.0)  # the panes' next frame is far away
        app.flush_redraws()
        chart_version = app.loss_plot.version
        shown = lambda: str(app.status_bar.render())  # noqa: E731
        app.status_interval = 600.0  # a status tick is not due either
        fake.emit(step_event(50))
        await pilot.pause()
        assert "it 50" not in shown()
        app.status_interval = 0.0  # now it is
        fake.emit(step_event(51))
        await pilot.pause()
        assert "it 51" in shown()
        assert app.loss_plot.version == chart_version  # the chart still waits for its frame
        app.flush_redraws()
        assert app.loss_plot.version > chart_version
