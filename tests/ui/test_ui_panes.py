"""Engine events reach every pane; failures and NaNs open their modals; the app stays usable."""

from __future__ import annotations

from cockpit.engine.commands import RewindSkip, SaveCheckpoint
from cockpit.engine.events import FaultCause, FlagRaised, RunError, RunState, RunWarning, Severity, StateChanged, WarningCategory
from ui_support import settle
from fake_engine import script


def text_of(widget) -> str:
    """Plain text of a Static-like widget's content."""
    return str(widget.render())


async def test_events_update_every_pane(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        status = text_of(app.query_one("#status"))
        for expected in ("RUNNING", "shapes-20231114-221320", "ep 3/4", "it 240/400", "4.00 it/s", "ETA 40s", "lr 0.005", "cuda:0 (Fake GPU 8GB)", "1 flagged"):
            assert expected in status, expected
        losses = app.query_one("#losses")
        legend = text_of(losses.query_one(".legend"))
        # torchvision's names where the pane has room for them, else the short forms (never a bare "rpn").
        names = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
        if "loss_classifier" not in legend:
            names = ("cls", "box", "rpn_obj", "rpn_box")
        for expected in (*names, "total", "AP50 0.610"):
            assert expected in legend, expected
        assert " rpn " not in legend
        memory = app.query_one("#memory")
        readings = text_of(memory.query_one(".readings"))
        assert "allocated" in readings and "8.00 GiB" in readings and "87%" in readings
        assert "OOM events: 1 (it 120)" in text_of(memory.query_one(".ooms"))
        assert len(memory.query_one("Sparkline").data) == 120
        checklist = app.query_one("#checklist")
        assert checklist.has_class("-flagged")
        options = checklist.query_one("OptionList")
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        oom = next(p for p in prompts if "CUDA out of memory" in p)
        assert "FLAGGED" in oom and "OOM at it 120" in oom
        assert any("not yet checked" not in p and p.strip().startswith("--") for p in prompts)
        preview = app.query_one("#preview")
        caption = text_of(preview.query_one(".caption"))
        assert "it 100" in caption and "GT 3" in caption and "pred 2" in caption
        assert "circle 0.91" in caption and "square 0.64" in caption
        image = preview.query_one(".image").content
        assert type(image).__name__ == "Pixels"


async def test_checklist_row_shows_what_to_do(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        options = app.query_one("#checklist OptionList")
        index = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == "cuda_oom")
        options.highlighted = index
        await settle(pilot)
        details = text_of(app.query_one("#checklist .details"))
        assert "FLAGGED" in details and "batch too big" in details and "lower data.batch_size" in details


async def test_loss_plot_keys_toggle_terms_scale_smoothing_window(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        plot = app.query_one("#losses")
        await pilot.press("1", "c", "t", "g", "m", "w")
        await settle(pilot)
        assert plot.hidden == {"loss_classifier", "loss"}
        assert plot.log_scale and plot.smoothing == 0.6 and plot.window == 100
        legend = text_of(plot.query_one(".legend"))
        assert "log" in legend and "ema 0.6" in legend and "last 100 it" in legend
        await pilot.press("c")
        assert plot.hidden == {"loss"}
        assert not fake.commands


async def test_cpu_run_memory_pane_has_no_gpu_numbers(make_app, preview_png):
    app, fake = make_app(script(image_path=str(preview_png), cuda=False, last_iter=20))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        readings = text_of(app.query_one("#memory .readings"))
        assert "CUDA      n/a (cpu)" in readings
        assert "RSS       2.07 GiB" in readings


async def test_failing_engine_shows_the_error_modal_and_app_stays(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.emit(RunError(summary="RuntimeError: boom in the data loader", traceback="Traceback...\nRuntimeError: boom", iter=240, fatal=True, time=0.0))
        fake.emit(StateChanged(state=RunState.FAILED, previous=RunState.RUNNING, reason="boom", time=0.0))
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ErrorScreen"
        assert "boom in the data loader" in text_of(app.screen.query_one(".summary"))
        assert "RuntimeError: boom" in app.screen.query_one("TextArea").text
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.__class__.__name__ != "ErrorScreen"
        assert app.query_one("#status").has_class("-failed")
        await pilot.press("5")  # the config pane is still usable
        assert app.focused.id == "config-text"


async def test_nan_pause_offers_recoveries(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.emit(FlagRaised(rule="nonfinite_loss", title="Loss is NaN / Inf", status="FLAGGED", severity=Severity.ERROR,
                             evidence="loss_box_reg = nan at it 241", fix="lower the LR", iter=241, time=0.0))
        fake.emit(StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="non-finite loss", time=0.0))
        fake.emit(RunError(summary="non-finite loss at it 241", traceback="", iter=241, fatal=False, time=0.0))
        await settle(pilot)
        assert app.screen.__class__.__name__ == "NaNScreen"
        assert "loss_box_reg = nan" in str(app.screen.query_one(".evidence").render())
        await pilot.press("1")
        await settle(pilot)
        assert fake.commands[-2:][0] == RewindSkip(lr_factor=0.1)
        assert app.model.state is RunState.RUNNING
        # The checklist row offers the same recoveries while the flag stands.
        checklist = app.query_one("#checklist")
        assert checklist.has_class("-nan-flagged")
        await pilot.click("#rewind-clip")
        await settle(pilot)
        assert RewindSkip(grad_clip=10.0) in fake.commands


async def test_warnings_are_notified_not_fatal(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.emit(RunWarning(message="skipped sample 17: degenerate box", iter=241, time=0.0))
        await settle(pilot)
        assert any("skipped sample 17" in str(n.message) for n in app._notifications)
        assert app.screen.__class__.__name__ == "Screen"


async def test_events_keep_updating_panes_under_a_modal(make_app):
    from fake_engine import step_event

    app, fake = make_app(redraw_interval=0.01)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "HelpScreen"
        fake.emit(step_event(300))
        await pilot.pause(0.1)  # let the throttled redraw timer fire
        await settle(pilot)
        assert "it 300/400" in text_of(app.status_bar)
        assert app.screen.__class__.__name__ == "HelpScreen"


async def test_other_pause_on_error_shows_the_error_modal(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.emit(RunError(summary="evaluation failed: bad annotation", traceback="Traceback...", iter=241, fatal=False, time=0.0))
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ErrorScreen"


async def test_a_checkpoint_that_cannot_be_written_says_how_to_save_it(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.emit(RunError(summary="no space left on device writing checkpoints/last.pt (needs ~9 MB, 2 MB free); "
                                   "the previous checkpoint is kept", traceback="", iter=241, fatal=False,
                           cause=FaultCause.CHECKPOINT, time=0.0))
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ErrorScreen"
        assert "no space left on device" in text_of(app.screen.query_one(".summary"))
        hint = text_of(app.screen.query_one(".hint"))
        assert "earlier checkpoint is untouched" in hint and "s saves a checkpoint now" in hint
        assert "edit the config" not in hint
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert fake.commands[-1] == SaveCheckpoint()


async def test_a_checkpoint_failure_is_not_taken_for_a_nan_while_the_nan_flag_stands(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.emit(FlagRaised(rule="nonfinite_loss", title="Loss is NaN / Inf", status="FLAGGED", severity=Severity.ERROR,
                             evidence="loss_box_reg = nan at it 241", fix="lower the LR", iter=241, time=0.0))
        fake.emit(RunError(summary="no space left on device writing checkpoints/last.pt", traceback="", iter=242,
                           fatal=False, cause=FaultCause.CHECKPOINT, time=0.0))
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ErrorScreen"
        assert "s saves a checkpoint now" in text_of(app.screen.query_one(".hint"))


async def test_a_final_checkpoint_that_cannot_be_written_says_the_run_ends_without_it(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.emit(StateChanged(state=RunState.STOPPING, previous=RunState.RUNNING, reason="training complete", time=0.0))
        fake.emit(RunError(summary="no space left on device writing checkpoints/last.pt", traceback="", iter=400,
                           fatal=False, cause=FaultCause.CHECKPOINT, time=0.0))
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ErrorScreen"
        assert "ends without its last checkpoint" in app.screen.query_one("Vertical").border_title
        hint = text_of(app.screen.query_one(".hint"))
        assert "--resume" in hint and "p resumes" not in hint


async def test_culprit_preview_from_the_train_split(make_app, preview_png, tmp_path):
    import shutil

    from fake_engine import preview_event

    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        culprit = shutil.copy(preview_png, tmp_path / "train-17.png")
        fake.emit(preview_event(str(culprit), 241, index=17))
        await settle(pilot)
        assert "train #17" in text_of(app.preview_panel.query_one(".caption"))


async def test_a_burst_of_warnings_is_one_toast(make_app):
    app, fake = make_app(events=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # Emitted back to back (the UI loop does not run in between): one drained batch.
        for i in range(5):
            fake.emit(RunWarning(message=f"skipped sample {i}", iter=i, category=WarningCategory.SKIPPED_SAMPLE, time=0.0))
        await settle(pilot)
        toasts = [str(n.message) for n in app._notifications]
        assert toasts == ["skipped sample 4 (+4 more like it)"]
