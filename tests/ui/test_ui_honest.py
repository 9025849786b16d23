"""The cockpit says what its keys do now, fits 80 columns, and keeps routine news quiet (#17)."""

from __future__ import annotations

import pytest

from cockpit.engine.commands import ScaleLR
from cockpit.engine.events import CheckpointSaved
from ui_support import settle


def footer_keys(app) -> list[str]:
    """The keys the footer shows now, left to right (the palette key docked right excluded)."""
    from textual.widgets._footer import FooterKey

    return [key.key for key in app.screen.query(FooterKey) if not key.has_class("-command-palette")]


def visible_footer_text(app) -> str:
    """What the footer's cells show at this terminal width."""
    from textual.widgets._footer import FooterKey

    footer = app.query_one("CockpitFooter")
    width = footer.region.right
    return " ".join(
        str(key.render()).strip() for key in app.screen.query(FooterKey)
        if key.region.width and key.region.right <= width and not key.has_class("-command-palette")
    )


async def test_config_pane_keys_are_global_until_enter_starts_editing(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        text = app.query_one("#config-text")
        before = text.text
        await pilot.press("5")
        assert app.focused is text and not app.config_editor.editing
        fake.respond = False
        await pilot.press("1")  # a pane jump, not a "1" in the file
        assert app._active_pane == 0 and text.text == before
        await pilot.press("5", "plus")
        assert text.text == before and fake.commands == [ScaleLR(2.0)]
        await pilot.press("enter")
        assert app.config_editor.editing
        await pilot.press("1", "plus")
        assert text.text == "1+" + before and app._active_pane == 4
        await pilot.press("escape")
        assert not app.config_editor.editing
        await pilot.press("1")
        assert app._active_pane == 0 and text.text == "1+" + before
        await pilot.press("5", "enter", "tab")  # tab leaves the pane, and editing with it
        assert app._active_pane == 5 % len(app.PANES) and not app.config_editor.editing


async def test_footer_shows_what_the_keys_do_now_in_the_config_pane(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        browsing = footer_keys(app)
        assert {"enter", "ctrl+s", "ctrl+r", "plus", "p"} <= set(browsing) and "escape" not in browsing
        await pilot.press("i")
        await settle(pilot)
        editing = footer_keys(app)
        # Typing keys type now: none of them is offered; how to stop, apply, quit and get help is.
        assert {"escape", "ctrl+s", "ctrl+q", "f1"} <= set(editing)
        assert not {"p", "plus", "minus", "e", "q", "question_mark", "enter"} & set(editing)
        await pilot.press("escape")
        await settle(pilot)
        assert footer_keys(app) == browsing


async def test_restart_has_a_key_a_palette_entry_and_a_footer_line(make_app):
    from fake_engine import FakeEngine, script

    started = []

    def factory(config, checkpoint):
        started.append((config, checkpoint))
        return FakeEngine(script(run_dir="runs/shapes-2", last_iter=20), run_dir="runs/shapes-2")

    app, fake = make_app(engine_factory=factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Restart (R)" in titles
        assert "R" not in footer_keys(app)  # nothing to restart with yet
        await pilot.press("R")
        await settle(pilot)
        assert not started and app.screen is app.screen_stack[0]
        text = app.query_one("#config-text")
        text.load_text(text.text.replace("batch_size = 2", "batch_size = 8"))
        await pilot.press("5", "ctrl+s")
        await settle(pilot)
        assert "R" in footer_keys(app)
        await settle(pilot)
        assert "R Restart" in visible_footer_text(app)  # pinned: a narrow footer does not cut it off
        fake.finish()
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        detail = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "has ended" in detail and "next iteration boundary" not in detail
        await pilot.press("y")
        await settle(pilot)
        await settle(pilot)
        assert started and started[0][0].data.batch_size == 8


async def test_every_action_has_a_key_a_palette_entry_and_a_help_line(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        await pilot.press("question_mark")
        await settle(pilot)
        help_text = str(app.screen.query_one("HelpScreen Static").render())
        first: dict[str, object] = {}
        for binding in app.key_bindings():
            assert binding.description, binding.key  # no bare "ctrl+c"
            first.setdefault(binding.action, binding)
        for action, binding in first.items():
            if action.startswith("focus_pane"):
                continue
            assert any(title.startswith(binding.description + " (") for title in titles), action
            assert (binding.tooltip or binding.description) in help_text, action
        # Each pane's own keys have a help line too (the key in the key column).
        import re

        columns = [line[:24] for line in help_text.splitlines()]
        for pane in app.panes.values():
            for binding in type(pane).__dict__.get("BINDINGS", []):
                for key in binding.key.split(","):
                    key = {"escape": "esc"}.get(key, key)
                    assert any(re.search(rf"(^|[ /]){re.escape(key)}($|[ /])", col.strip()) for col in columns), key
        quit_line = next(line for line in help_text.splitlines() if "ctrl+c" in line)
        assert "q / ctrl+q / ctrl+c" in quit_line and "exit" in quit_line


async def test_ctrl_c_asks_to_quit(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ConfirmScreen"


async def test_engine_keys_leave_the_footer_when_the_run_has_ended(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert {"p", "e", "s"} <= set(footer_keys(app))
        fake.finish()
        await settle(pilot)
        shown = footer_keys(app)
        assert not {"p", "plus", "minus", "L", "e", "s", "n", "b"} & set(shown)
        assert {"q", "question_mark", "r"} <= set(shown)


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 48)])
async def test_quit_and_help_are_always_in_the_footer(make_app, size):
    app, fake = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for pane in ("1", "3", "4", "5"):
            await pilot.press(pane)
            await settle(pilot)
            shown = visible_footer_text(app)
            assert "q Quit" in shown and "? Help" in shown, (pane, shown)


async def test_help_window_scrolls_to_its_last_line_at_80x24(make_app):
    app, fake = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        box = app.screen.query_one("VerticalScroll")
        assert app.focused is box and box.max_scroll_y > 0
        await pilot.press("end")
        await settle(pilot)
        assert box.scroll_y == box.max_scroll_y


@pytest.mark.parametrize("width", [80, 100, 160])
async def test_status_bar_is_one_line_and_keeps_the_state(make_app, width):
    app, fake = make_app()
    async with app.run_test(size=(width, 30)) as pilot:
        await settle(pilot)
        bar = app.query_one("#status")
        text = str(bar.render())
        assert bar.region.height == 1 and "\n" not in text
        assert "RUNNING" in text and "it 240/400" in text and "lr" in text


async def test_checkpoint_saved_is_in_the_status_bar_not_a_toast(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.clear_notifications()
        fake.emit(CheckpointSaved(iter=250, epoch=2, path="runs/shapes-1/checkpoints/last.pt", reason="epoch", time=0.0))
        await settle(pilot)
        assert not [n for n in app._notifications if "heckpoint" in (n.title or "") + n.message]
        assert "saved it 250" in str(app.query_one("#status").render())


@pytest.mark.parametrize(("width", "names", "absent"), [
    (120, ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"), ()),
    (80, ("cls", "box", "rpn_obj", "rpn_box"), ("loss_classifier", " rpn ")),
])
async def test_loss_legend_uses_torchvision_names_where_they_fit(make_app, width, names, absent):
    app, fake = make_app()
    async with app.run_test(size=(width, 30)) as pilot:
        await settle(pilot)
        legend = str(app.query_one("#losses .legend").render())
        first = legend.splitlines()[0]
        for name in names:
            assert name in first
        for name in absent:
            assert name not in legend


async def test_checklist_detail_of_an_ok_rule_is_current(make_app):
    from cockpit.engine.events import StepMetrics

    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        rows = [row.rule for row in app.checklist_panel._rows]
        for _ in range(rows.index("nonfinite_loss")):
            await pilot.press("down")
        await settle(pilot)
        details = str(app.query_one("#checklist .details").render())
        assert "all finite (at it 10)" in details and "Still OK at it 240" in details
        fake.emit(StepMetrics(iter=250, epoch=3, loss=0.5, losses={"loss_classifier": 0.5}, lr=0.005, time=0.0))
        await settle(pilot)
        assert "Still OK at it 250" in str(app.query_one("#checklist .details").render())


async def test_pane_keys_and_nan_recovery_are_in_the_palette(make_app):
    from cockpit.engine.commands import RewindSkip
    from cockpit.engine.events import FlagRaised, RunError, Severity

    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Losses: Log scale on/off (g)", "Preview: Show GT + predictions, GT only, or predictions only (d)",
                      "Config: Edit the TOML (esc stops editing) (enter)", "Config: Put the running config back in the editor (ctrl+r)",
                      "Recover (N)"):
            assert title in titles, title
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Losses: Log scale on/off (g)")
        command.callback()
        await settle(pilot)
        assert app.loss_plot.log_scale and app._active_pane == 0
        assert "N" not in footer_keys(app)  # nothing to recover from
        fake.respond = False
        fake.emit(FlagRaised(rule="nonfinite_loss", title="Loss is NaN / Inf", status="FLAGGED", severity=Severity.ERROR,
                             evidence="loss_box_reg = nan at it 250", iter=250, time=0.0))
        fake.emit(RunError(summary="non-finite loss at it 250", traceback="", iter=250, fatal=False, time=0.0))
        await settle(pilot)
        assert app.screen.__class__.__name__ == "NaNScreen"
        await pilot.press("escape")  # decide later ...
        await settle(pilot)
        assert "N" in footer_keys(app)
        await pilot.press("N")  # ... by keyboard: the choices come back
        await settle(pilot)
        assert app.screen.__class__.__name__ == "NaNScreen"
        await pilot.press("3")
        await settle(pilot)
        assert fake.commands[-1] == RewindSkip()


async def test_a_rejected_apply_puts_the_cursor_on_the_line_without_selecting_it(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        text = app.query_one("#config-text")
        await pilot.press("5", "enter")
        text.load_text(text.text.replace("lr = 0.005", "lr = -1.0"))
        await pilot.press("ctrl+s")
        await settle(pilot)
        line = next(i for i, row in enumerate(text.text.splitlines()) if row.startswith("lr ="))
        assert text.cursor_location == (line, 0) and text.selected_text == ""
        await pilot.press("#")  # still editing: typing inserts, the line stays
        assert text.text.splitlines()[line] == "#lr = -1.0"
