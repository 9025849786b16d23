"""The redraw interval follows what a frame costs the UI thread (cockpit/ui/frame_budget.py)."""

from __future__ import annotations

import contextlib

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


@contextlib.asynccontextmanager
async def _running_with_frames_far_apart(make_app):
    """A cockpit whose run has started, whose panes' next frame is ten minutes away and
    whose status bar is not due either (a test sets ``status_interval`` to let it move)."""
    from fake_engine import script

    started = script(last_iter=4)[:2]  # RunStarted, RUNNING
    app, fake = make_app(events=started, redraw_interval=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.pause()
        app.frame_budget = FrameBudget(600.0)
        app.status_interval = 600.0
        app.flush_redraws()
        yield app, fake, pilot


def _status(app) -> str:
    return str(app.status_bar.render())


async def test_state_changes_are_drawn_at_once_while_step_records_wait_for_the_budget(make_app):
    from cockpit.engine.events import RunState, StateChanged
    from fake_engine import step_event

    async with _running_with_frames_far_apart(make_app) as (app, fake, pilot):
        fake.emit(step_event(50))
        await pilot.pause()
        assert app.model.iter == 50 and "it 50" not in _status(app)  # waits for its frame
        fake.emit(StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="paused by user", iter=50))
        await pilot.pause()
        assert "PAUSED" in _status(app) and "it 50" in _status(app)  # drawn now, with what waited


async def test_the_status_bar_moves_between_frames_while_the_panes_wait(make_app):
    from fake_engine import step_event

    async with _running_with_frames_far_apart(make_app) as (app, fake, pilot):
        chart_version = app.loss_plot.version
        fake.emit(step_event(50))
        await pilot.pause()
        assert "it 50" not in _status(app)
        app.status_interval = 0.0  # the status bar's second is up
        fake.emit(step_event(51))
        await pilot.pause()
        assert "it 51" in _status(app)
        assert app.loss_plot.version == chart_version  # the chart still waits for its frame
        app.flush_redraws()
        assert app.loss_plot.version > chart_version


async def test_an_epoch_end_checkpoint_waits_for_the_frame_like_the_steps_it_ends(make_app):
    from cockpit.engine.events import CheckpointSaved
    from fake_engine import step_event

    async with _running_with_frames_far_apart(make_app) as (app, fake, pilot):
        chart_version = app.loss_plot.version
        fake.emit(step_event(50))
        fake.emit(CheckpointSaved(iter=50, epoch=2, path="ckpt/last.pt", reason="epoch"))
        await pilot.pause()
        assert app.model.last_checkpoint_iter == 50
        assert "it 50" not in _status(app) and app.loss_plot.version == chart_version
        app.flush_redraws()
        assert "it 50" in _status(app) and app.loss_plot.version > chart_version


async def test_a_flag_draws_its_checklist_and_the_status_at_once_and_leaves_the_chart_to_its_frame(make_app):
    from cockpit.diagnostics.flags import Severity
    from cockpit.engine.events import FlagRaised
    from fake_engine import step_event

    async with _running_with_frames_far_apart(make_app) as (app, fake, pilot):
        chart_version = app.loss_plot.version
        fake.emit(step_event(50))
        fake.emit(FlagRaised(rule="cuda_oom", title="CUDA out of memory", status="FLAGGED", severity=Severity.WARNING,
                             evidence="OOM at it 50", fix="lower data.batch_size", iter=50))
        await pilot.pause()
        assert app.checklist_panel.has_class("-flagged")
        assert "it 50" in _status(app)
        assert app.loss_plot.version == chart_version  # the new step waits for the chart's frame
        app.flush_redraws()
        assert app.loss_plot.version > chart_version
