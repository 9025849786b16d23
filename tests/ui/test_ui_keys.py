"""Each key of the cockpit sends the right command to the engine."""

from __future__ import annotations

import pytest

from cockpit.engine.commands import (
    EvaluateNow,
    RequestPreview,
    SaveCheckpoint,
    ScaleLR,
    SetLR,
    Stop,
    TogglePause,
)
from cockpit.engine.events import RunState
from ui_support import settle


KEYS = [
    ("p", TogglePause()),
    ("space", TogglePause()),
    ("plus", ScaleLR(2.0)),
    ("minus", ScaleLR(0.5)),
    ("e", EvaluateNow()),
    ("s", SaveCheckpoint()),
    ("n", RequestPreview(1)),
    ("b", RequestPreview(-1)),
]


async def test_each_key_sends_its_command(make_app):
    # One app for every key (starting an app costs seconds on a small CI box); the fake
    # engine is told not to answer, so the state (and the preview index) stays put.
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.respond = False
        for key, command in KEYS:
            fake.commands.clear()
            await pilot.press(key)
            await settle(pilot)
            assert fake.commands == [command], key


async def test_pause_then_resume_follows_engine_state(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert app.model.state is RunState.PAUSED
        assert app.query_one("#status").has_class("-paused")
        await pilot.press("p")
        await settle(pilot)
        assert [c for c in fake.commands if isinstance(c, TogglePause)] == [TogglePause(), TogglePause()]
        assert app.model.state is RunState.RUNNING


async def test_quick_presses_toggle_against_the_engine_state_not_the_screen(make_app):
    # The engine answers only after both presses: each press must still toggle.
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.respond = False
        await pilot.press("space", "space")
        await settle(pilot)
        fake.respond = True
        for command in list(fake.commands):
            fake._answer(command)
        await settle(pilot)
        assert app.model.state is RunState.RUNNING
        await pilot.press("p", "p", "p")
        await settle(pilot)
        assert app.model.state is RunState.PAUSED


async def test_lr_keys_update_the_status_bar(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("plus")
        await settle(pilot)
        assert app.model.lr == pytest.approx(0.01)
        assert "lr 0.01" in str(app.query_one("#status").render())


async def test_set_lr_dialog(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "SetLRScreen"
        await pilot.press(*"abc", "enter")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "SetLRScreen"  # invalid: stays open, nothing sent
        assert not [c for c in fake.commands if isinstance(c, SetLR)]
        await pilot.press(*["backspace"] * 3, *"0.002", "enter")
        await settle(pilot)
        assert SetLR(0.002) in fake.commands
        assert app.screen.__class__.__name__ != "SetLRScreen"


async def test_preview_keys_follow_the_shown_index(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        from cockpit.engine.events import PreviewReady
        from fake_engine import preview_event

        fake.emit(preview_event(None, 240, index=5))
        await settle(pilot)
        fake.commands.clear()
        await pilot.press("n", "b")
        assert fake.commands == [RequestPreview(6), RequestPreview(4)]
        assert isinstance(app.model.preview, PreviewReady)


async def test_pane_keys_focus_and_maximise(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        assert app._pane_of(app.focused) == 2  # checklist
        await pilot.press("tab")
        assert app._pane_of(app.focused) == 3  # preview
        await pilot.press("shift+tab", "shift+tab")
        assert app._pane_of(app.focused) == 1  # memory
        await pilot.press("5")
        assert app.focused.id == "config-text"
        await pilot.press("tab")  # leaves the editor (no indent) for the next pane
        assert app._pane_of(app.focused) == 5  # labels
        await pilot.press("tab")  # and round to the first
        assert app._pane_of(app.focused) == 0
        await pilot.press("f")
        assert app.screen.maximized is app.query_one("#losses")
        await pilot.press("f")
        assert app.screen.maximized is None
        assert not fake.commands


async def test_narrow_terminal_shows_one_pane_at_a_time(make_app):
    app, fake = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.has_class("-narrow")
        assert app.query_one("#losses").display and app.query_one("#losses").region.width > 0
        assert app.query_one("#memory").region.width == 0
        await pilot.press("2")
        await settle(pilot)
        assert app.query_one("#memory").region.width > 0
        assert app.query_one("#losses").region.width == 0


async def test_help_and_palette_list_the_actions(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for name in ("Pause/Resume (p)", "Eval (e)", "Save (s)", "Report (r)", "Quit (q)", "Set LR (L)"):
            assert name in titles
        assert not fake.commands


async def test_footer_shows_the_keys(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        shown = {binding.key for (_, binding, enabled, _) in app.screen.active_bindings.values() if binding.show}
        assert {"p", "space", "plus", "minus", "L", "e", "s", "r", "n", "b", "f", "q", "question_mark"} <= shown


async def test_report_without_builder_says_so(make_app, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cockpit.report.build", None)  # import fails
    app, fake = make_app()
    notes = []
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append((message, kw.get("title"))))
        await pilot.press("r")
        await settle(pilot)
    assert any(title == "Report not available" for _, title in notes)
    assert not [c for c in fake.commands]


async def test_report_builder_result_is_announced(make_app, monkeypatch, tmp_path):
    import sys
    import types

    built = []

    def build_report(run_dir):
        built.append(run_dir)
        return types.SimpleNamespace(html=tmp_path / "report.html")

    monkeypatch.setitem(sys.modules, "cockpit.report.build", types.SimpleNamespace(build_report=build_report))
    app, fake = make_app()
    notes = []
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append((str(message), kw.get("title"))))
        await pilot.press("r")
        await settle(pilot)
    assert built == [fake.run_dir]
    assert (str(tmp_path / "report.html"), "Report written") in notes


async def test_quit_asks_saves_stops_and_exits(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        await pilot.press("n")
        await settle(pilot)
        assert not fake.commands and not fake.closed
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
    assert fake.commands[0] == Stop(save=True, reason="quit")
    assert fake.closed
    assert app.return_code == 0


async def test_quit_after_the_run_has_ended_exits_without_asking(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.finish()
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        await settle(pilot)
    # Closed with no answer given: no question was asked, and nothing to stop was sent.
    assert fake.closed and not fake.commands
    assert app.return_code == 0


async def test_commands_after_the_run_ended_are_not_sent(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.finish()
        await settle(pilot)
        fake.commands.clear()
        await pilot.press("p", "e", "s", "plus")
        await settle(pilot)
        assert fake.commands == []
        assert app.is_running  # the app stays open after the run
        assert app.query_one("#status").has_class("-finished")


async def test_escape_leaves_the_editor_so_keys_work_again(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("5", "enter", "e")
        assert app.config_editor.editing
        assert app.query_one("#config-text").text.startswith("e")  # editing: e types
        await pilot.press("escape")
        assert not app.config_editor.editing and app.focused.id == "config-text"
        fake.respond = False
        fake.commands.clear()
        await pilot.press("e")
        assert fake.commands == [EvaluateNow()]
        assert app.query_one("#config-text").text.startswith("e[run]")  # nothing more typed


async def test_command_palette_runs_an_action_by_name(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fake.respond = False
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"Save (s)")
        # The palette searches in a worker: wait until it lists a hit (bounded, not timed).
        for _ in range(100):
            await pilot.pause(0.02)
            if app.screen.query("CommandList") and app.screen.query_one("CommandList").option_count:
                break
        await pilot.press("enter")
        await settle(pilot)
        assert fake.commands == [SaveCheckpoint()]


async def test_clicking_a_tab_switches_pane(make_app):
    app, fake = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tabs = app.tabs
        label = " 3 Checklist "
        x = str(tabs.render()).index(label) + 3
        await pilot.click(tabs, offset=(x + 1, 0))
        await settle(pilot)
        assert app._active_pane == 2 and app.checklist_panel.region.width > 0
