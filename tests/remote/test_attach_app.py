"""The attached cockpit (Textual, run_test) against a live detached run."""

from __future__ import annotations

import asyncio

from cockpit.cli import detach_message
from cockpit.config import load_config
from cockpit.engine.commands import Pause
from cockpit.engine.events import RunState
from cockpit.remote import runs
from cockpit.remote.client import RemoteLink
from cockpit.ui.attached import create_attached_app


async def wait_until(pilot, condition, timeout: float = 240.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)
        await pilot.pause()


def footer_keys(app) -> dict[str, str]:
    return {binding.key: binding.description for _, binding, enabled, _ in app.active_bindings.values() if enabled}


async def test_attached_cockpit_detaches_on_q_and_stops_the_run_on_confirmed_x(detach):
    run = detach("run.max_iters=60")
    config = load_config(run.run_dir / "config.toml")

    link = RemoteLink(run.run_dir)
    app = create_attached_app(link, config, redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.model.state is RunState.RUNNING and app.model.iter >= 1)
        keys = footer_keys(app)
        assert keys["q"] == "Detach" and keys["X"] == "Stop run"
        await pilot.press("p")
        await wait_until(pilot, lambda: app.model.state is RunState.PAUSED)
        await pilot.press("q")  # no question asked: detaching changes nothing for the run
        await wait_until(pilot, lambda: not link.connected)
    assert runs.pid_alive(run.pid) and runs.inspect(run.run_dir).state == "paused"
    assert "stays paused" in detach_message(run.run_dir, app.model.state.value)

    link = RemoteLink(run.run_dir)
    app = create_attached_app(link, config, redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.model.state is RunState.PAUSED)  # still paused, from the history
        await pilot.press("X")
        await pilot.pause()
        await pilot.press("n")  # declined: nothing happens
        await pilot.pause()
        assert app.model.state is RunState.PAUSED
        await pilot.press("X")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: app.model.state.is_terminal)
        await pilot.press("q")
        await wait_until(pilot, lambda: not link.connected)
    assert (run.run_dir / "checkpoints" / "last.pt").is_file()
    assert runs.inspect(run.run_dir).state == "stopped"  # by the user, before the end

    link = RemoteLink(run.run_dir)
    assert link.read_only and "stopped" in link.read_only_reason
    app = create_attached_app(link, config, redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.model.state.is_terminal)
        assert "X" not in footer_keys(app)  # nothing to stop
        assert app.send(Pause()) is False  # refused, with the reason in a toast
        await pilot.press("q")
