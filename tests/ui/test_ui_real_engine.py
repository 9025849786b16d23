"""One test with the real engine and the `tiny` sample inside run_test()."""

from __future__ import annotations

from cockpit.engine.events import RunState
from cockpit.diagnostics.hook import DiagnosticsHook
from cockpit.engine.trainer import Trainer
from ui_support import settle, wait_until


async def test_real_engine_drives_the_panes_and_quit_saves(sample_config):
    from cockpit.ui.app import create_app

    config = sample_config("run.max_iters=200", "run.log_every=1")
    trainer = Trainer(config, hooks=[DiagnosticsHook()])
    app = create_app(trainer, config, redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.model.iter >= 2)
        assert app.model.state is RunState.RUNNING
        assert app.model.losses.view(40)  # the loss plot has data to draw
        await pilot.press("p")
        await wait_until(pilot, lambda: app.model.state is RunState.PAUSED)
        paused_at = trainer.iteration
        lr_before = trainer.lr
        await pilot.press("plus")
        # The LR change is applied while paused and reaches the status bar's model.
        await wait_until(pilot, lambda: app.model.lr is not None and abs(app.model.lr - 2 * lr_before) < 1e-12)
        assert trainer.iteration == paused_at, "no iteration runs while paused"
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: trainer.state.is_terminal)
    assert (trainer.run_dir / "checkpoints" / "last.pt").is_file()
    assert trainer.state is RunState.FINISHED


async def test_plus_twice_shows_in_the_config_pane_and_resume_continues_at_that_lr(sample_config):
    from cockpit.ui.app import create_app
    from cockpit.engine.events import RunStarted, StepMetrics
    from support import Recorder

    config = sample_config("run.max_iters=200", "run.log_every=1", "optim.warmup_iters=0")
    base = config.optim.lr
    trainer = Trainer(config, hooks=[DiagnosticsHook()])
    app = create_app(trainer, config, redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.model.iter >= 1)
        await pilot.press("p")
        await wait_until(pilot, lambda: app.model.state is RunState.PAUSED)
        await pilot.press("plus")
        await pilot.press("plus")
        await wait_until(pilot, lambda: app.model.lr is not None and abs(app.model.lr - 4 * base) < 1e-12)
        await pilot.press("5")
        await wait_until(pilot, lambda: f"lr = {4 * base}" in app.config_editor.text)
        assert app.config.optim.lr == 4 * base
        assert f"lr {4 * base:.3g}" in str(app.query_one("#status").render())
        await pilot.press("escape")  # out of the editor: the cockpit keys work again
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: trainer.state.is_terminal)
    run_dir = trainer.run_dir
    trainer.close()

    resumed = Trainer(sample_config("run.max_iters=200", "run.log_every=1", "optim.warmup_iters=0"), resume="auto", headless=True)
    events = Recorder()
    resumed.subscribe(events)
    resumed.start()
    step = events.wait_for(lambda e: isinstance(e, StepMetrics))
    resumed.close(save=False)
    assert resumed.run_dir == run_dir
    assert events.of(RunStarted)[0].config["optim"]["lr"] == 4 * base
    assert step.lr == 4 * base
