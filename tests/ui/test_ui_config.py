"""The Config pane: Apply validates, patches live-safe fields, marks the rest for a restart."""

from __future__ import annotations

from cockpit.engine.commands import ApplyPatch, Stop
from ui_support import settle
from fake_engine import FakeEngine, script


def edit(app, old: str, new: str) -> None:
    area = app.query_one("#config-text")
    assert old in area.text, old
    area.load_text(area.text.replace(old, new, 1))


def problems(app) -> str:
    return str(app.query_one("#config .problems").render())


async def test_bad_value_shows_the_line_and_sends_nothing(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        running = app.config
        edit(app, "lr = 0.005", "lr = -1.0")
        line = next(i for i, text in enumerate(app.query_one("#config-text").text.splitlines(), 1) if text.startswith("lr ="))
        fake.commands.clear()
        await pilot.press("ctrl+s")
        await settle(pilot)
        text = problems(app)
        assert f"line {line}: optim.lr" in text and "greater than 0" in text
        assert app.query_one("#config .problems").has_class("-error")
        assert app.query_one("#config-text").cursor_location[0] == line - 1
        assert fake.commands == []
        assert app.config is running and app.config.optim.lr == 0.005


async def test_invalid_toml_is_reported_with_its_line(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        edit(app, "seed = 0", "seed = = 0")
        fake.commands.clear()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "line 4:" in problems(app) and "invalid TOML" in problems(app)
        assert fake.commands == []


async def test_live_safe_edit_sends_a_patch(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        edit(app, "lr = 0.005", "lr = 0.01")
        edit(app, "hflip = 0.5", "hflip = 0.0")
        fake.commands.clear()
        await pilot.click("#config-apply")
        await settle(pilot)
        assert fake.commands[0] == ApplyPatch({"optim.lr": 0.01, "augment.hflip": 0.0})
        assert app.config.optim.lr == 0.01
        assert "applied live" in problems(app)
        assert not app.query_one("#config").has_class("-needs-restart")
        assert app.model.lr == 0.01  # the fake answers with LRChanged


async def test_other_edit_needs_restart_and_restarts_from_the_checkpoint(make_app, preview_png):
    started = []

    def factory(config, checkpoint):
        started.append((config, checkpoint))
        return FakeEngine(script(run_dir="runs/shapes-2", image_path=str(preview_png), last_iter=20), run_dir="runs/shapes-2")

    app, fake = make_app(engine_factory=factory)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        edit(app, "batch_size = 2", "batch_size = 8")
        fake.commands.clear()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert fake.commands == []
        assert "needs restart: data.batch_size" in problems(app)
        assert app.query_one("#config").has_class("-needs-restart")
        await pilot.click("#config-restart")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        await pilot.press("y")
        await settle(pilot)
        await settle(pilot)
        assert fake.commands == [Stop(save=True, reason="restart")] and fake.closed
        (config, checkpoint), = started
        assert config.data.batch_size == 8
        assert checkpoint == "runs/shapes-1/checkpoints/last.pt"
        assert app.link is not fake and app.link.started
        assert app.model.iter == 20 and "shapes-2" in app.model.run_name
        assert app.config.data.batch_size == 8
        assert not app.query_one("#config").has_class("-needs-restart")


async def test_restart_without_factory_says_so(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        edit(app, "batch_size = 2", "batch_size = 8")
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.click("#config-restart")
        await settle(pilot)
        assert any(n.title == "Restart not available" for n in app._notifications)
        assert not fake.closed


async def test_quit_after_the_run_ended_asks_only_while_config_edits_would_be_lost(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.finish()
        await settle(pilot)
        await pilot.press("5")
        edit(app, "batch_size = 2", "batch_size = 8")  # typed, not applied
        await pilot.press("q")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        detail = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "edits" in detail and "will be lost" in detail
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("ctrl+s")  # applied, but it needs a restart that has not happened
        await settle(pilot)
        assert "needs restart" in problems(app)
        await pilot.press("q")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("ctrl+r")  # reverted: nothing left to lose
        await settle(pilot)
        assert not fake.closed
        await pilot.press("q")
        await settle(pilot)
        await settle(pilot)
    assert fake.closed and not fake.commands  # quit with no question; nothing sent to the ended run
