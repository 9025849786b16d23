"""The cockpit opens before the run exists: start-up phases, pre-flight rows as they come,
and a run the pre-flight refuses explained in the cockpit (cockpit/startup.py)."""

from __future__ import annotations

import threading

from cockpit.engine.events import CheckState, RunState
from cockpit.startup import StartupLink
from cockpit.ui.modals import StartupFailedScreen
from cockpit.ui.widgets.status_bar import StatusBar
from fake_engine import FakeEngine, script
from ui_support import wait_until


def status(app) -> str:
    return StatusBar.render_state(app.model, 300).plain


async def test_the_cockpit_shows_the_start_up_while_the_data_is_checked_and_the_model_built(sample_config, preview_png):
    from cockpit.ui.app import create_app

    config = sample_config()
    release = threading.Event()
    fake = FakeEngine(script(image_path=str(preview_png)), run_dir="runs/shapes-1")

    def build(cfg, report):
        release.wait(120)  # the model is "being built" until the test has looked
        return fake

    link = StartupLink(config, build)
    app = create_app(link, config, "shapes.toml", redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        # Drawn before the start-up thread did anything heavy.
        await pilot.pause()
        assert "STARTING" in status(app)
        await wait_until(pilot, lambda: "building model" in status(app))
        assert app.loss_plot.waiting_text == "building model…"
        # Every pre-flight row is in the checklist before the model exists.
        rows = {row.rule: row for row in app.model.checklist.rows()}
        assert rows["dataset_load"].state is CheckState.OK
        assert rows["label_zero"].state is CheckState.OK
        assert not fake.started
        release.set()
        await wait_until(pilot, lambda: app.model.iter >= 100)
        assert fake.started and app.model.startup is None
        assert "STARTING" not in status(app)


async def test_a_run_refused_by_the_pre_flight_is_explained_and_q_quits_without_asking(sample_config, tmp_path):
    from cockpit.ui.app import create_app

    config = sample_config(f"data.train='{tmp_path / 'missing.json'}'")
    built = []
    link = StartupLink(config, lambda cfg, report: built.append(cfg))
    app = create_app(link, config, "shapes.toml", redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, StartupFailedScreen))
        screen = app.screen
        assert [row.rule for row in screen.rows] == ["dataset_load"]
        assert screen.rows[0].fix.startswith("fix data.train")
        assert app.model.state is RunState.FAILED
        assert "could not start" in app.loss_plot.waiting_text
        await pilot.press("q")
        await pilot.pause()
    assert built == [] and link.trainer is None and link.failure is not None
    assert app.return_code in (0, None)  # the app closed itself; the CLI turns the failure into exit 1


async def test_r_after_a_refused_start_checks_again_and_starts(sample_config, tmp_path, preview_png):
    from cockpit.ui.app import create_app

    good = sample_config()
    bad = sample_config(f"data.train='{tmp_path / 'missing.json'}'")
    fake = FakeEngine(script(image_path=str(preview_png)), run_dir="runs/shapes-2")
    made = []

    def restart(config, resume_from):
        made.append((config, resume_from))
        return StartupLink(good, lambda cfg, report: fake)

    app = create_app(StartupLink(bad, lambda cfg, report: None), bad, "shapes.toml", engine_factory=restart,
                     redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, StartupFailedScreen))
        await pilot.press("escape")
        assert app.unavailable("report") == "no run folder yet: the run has not started"
        assert "never started" in app._restart_detail(True)
        await pilot.press("R")
        await pilot.press("y")
        await wait_until(pilot, lambda: fake.started and app.model.iter >= 100)
        assert made and made[0][1] is None  # nothing ran: no checkpoint to start from
        assert app.model.startup_failure is None and app.model.state is not RunState.FAILED
        assert app.unavailable("report") is None  # the new run has a folder
