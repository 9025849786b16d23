"""One test with the real engine and the `tiny` sample inside run_test()."""

from __future__ import annotations

import asyncio

from cockpit.engine.events import RunState
from cockpit.diagnostics.hook import DiagnosticsHook
from cockpit.engine.trainer import Trainer
from ui_support import settle


async def wait_until(pilot, condition, steps: int = 2400) -> None:
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0.05)
        await pilot.pause()
    raise AssertionError("condition not reached")


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
