"""The config pane: the run's TOML in an editor; Apply validates, patches or asks to restart.

Keyboard model: the buffer is read-only until ``enter`` (or ``i``) starts editing, and
``esc`` (or leaving the pane) stops it. While not editing, the cockpit's own keys (1-5,
+/-, p, ...) work in this pane as everywhere; while editing, printable keys type and the
footer shows only what still works (ctrl+s, esc, ctrl+q, f1).

Apply parses the buffer with the same loader as ``cockpit run`` (``load_config_text``).
A bad buffer lists every problem with its line and moves the cursor there; the running
config is untouched and nothing is sent. A good one is compared with the running config
field by field: live-safe fields (``LIVE_FIELDS``) go to the engine as one patch, any
other change is marked "needs restart" and enables the restart action.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Static, TextArea

from cockpit.config import LIVE_FIELDS, Config, ConfigError, dump_config, load_config_text


def flat_fields(config: Config) -> dict[str, Any]:
    """``{"optim.lr": 0.005, ...}`` for every field of every section."""
    return {
        f"{section}.{key}": value
        for section, values in config.model_dump().items()
        for key, value in values.items()
    }


BROWSING_HINT = (
    "enter edits the TOML, ctrl+s applies it: live-safe fields apply at once, others need "
    "a restart (R). The cockpit keys work here until you press enter."
)


def config_changes(running: Config, edited: Config) -> dict[str, Any]:
    """Dotted fields whose value differs, with the edited value."""
    before, after = flat_fields(running), flat_fields(edited)
    return {key: value for key, value in after.items() if before.get(key) != value}


class ConfigEditor(Vertical):
    """TOML editor with Apply (ctrl+s), Revert and Restart-with-this-config (R, from the app)."""

    ALLOW_MAXIMIZE = True
    BINDINGS = [
        Binding("enter,i", "start_editing", "Edit", tooltip="Edit the TOML (esc stops editing)", id="config_edit"),
        Binding("escape", "stop_editing", "Stop editing", tooltip="Stop editing: the cockpit keys work again", id="config_stop"),
        Binding("ctrl+s", "apply", "Apply", tooltip="Validate the edited TOML and apply it", priority=True, id="config_apply"),
        Binding("ctrl+r", "revert", "Revert", tooltip="Put the running config back in the editor", id="config_revert"),
        # While editing, q and ? type; these say how to quit and get help meanwhile.
        Binding("ctrl+q", "quit_from_editor", "Quit", tooltip="Quit (asks first when something would be lost)", id="config_quit"),
        Binding("f1", "help_from_editor", "Help", tooltip="Show every key", id="config_help"),
    ]
    DEFAULT_CSS = """
    ConfigEditor > TextArea, ConfigEditor > TextArea:focus { height: 1fr; min-height: 3; border: none; padding: 0; }
    ConfigEditor > .problems { height: auto; max-height: 8; padding: 0 1; }
    ConfigEditor > .problems.-error { color: $text-error; background: $error-muted; }
    ConfigEditor > .problems.-restart { color: $text-warning; background: $warning-muted; }
    ConfigEditor > .problems.-ok { color: $text-success; }
    ConfigEditor > .buttons { height: auto; }
    ConfigEditor > .buttons Button { margin: 0 1 0 0; min-width: 8; }
    ConfigEditor #config-restart { display: none; }
    ConfigEditor.-needs-restart #config-restart { display: block; }
    """

    class PatchRequested(Message):
        """Live-safe fields changed: send them to the engine."""

        def __init__(self, changes: dict[str, Any]) -> None:
            super().__init__()
            self.changes = changes

    class RestartRequested(Message):
        """Start a new run from the last checkpoint with ``config``."""

        def __init__(self, config: Config) -> None:
            super().__init__()
            self.config = config

    def __init__(self, config: Config, text: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.running = config
        self._initial_text = text if text is not None else dump_config(config)
        self.pending_restart: Config | None = None
        self.problems: list[str] = []
        self._settled_text = ""
        """The buffer as last loaded or applied: typing since then is an unapplied edit."""

    def compose(self) -> ComposeResult:
        # The "css" theme follows the app theme, so the editor reads on light terminals too.
        editor = TextArea.code_editor(
            self._initial_text, language="toml", theme="css", tab_behavior="focus", id="config-text",
            read_only=True,
        )
        yield editor
        yield Static(classes="problems")
        with Horizontal(classes="buttons"):
            yield Button("Apply ^s", id="config-apply", variant="primary", compact=True)
            yield Button("Revert ^r", id="config-revert", compact=True)
            yield Button("Restart with this config (R)", id="config-restart", variant="warning", compact=True)

    def on_mount(self) -> None:
        self._settled_text = self.text
        self.border_title = "5 Config"
        self._say(BROWSING_HINT, "")

    # -- editing mode -------------------------------------------------------------------
    @property
    def editing(self) -> bool:
        """True while the buffer takes typed text (after enter / i, until esc)."""
        return not self.query_one(TextArea).read_only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start_editing":
            return not self.editing
        if action in ("stop_editing", "quit_from_editor", "help_from_editor"):
            return self.editing
        return True

    def action_quit_from_editor(self) -> None:
        self._stop_editing()
        self.app.action_quit_cockpit()

    def action_help_from_editor(self) -> None:
        self._stop_editing()
        self.app.action_help()

    def action_start_editing(self) -> None:
        editor = self.query_one(TextArea)
        editor.read_only = False
        editor.focus()
        self.set_class(True, "-editing")
        self._say("Editing: type freely; ctrl+s applies, esc stops editing (then the cockpit keys work again).", "")
        self.refresh_bindings()
        self.app.refresh_bindings()

    def action_stop_editing(self) -> None:
        self._stop_editing()
        self._say(BROWSING_HINT, "")

    def _stop_editing(self) -> None:
        editor = self.query_one(TextArea)
        if editor.read_only:
            return
        editor.read_only = True
        self.set_class(False, "-editing")
        self.refresh_bindings()
        self.app.refresh_bindings()

    def on_descendant_blur(self, event) -> None:
        # Leaving the pane (tab, a pane key, a dialog) ends editing: keys are global again.
        if isinstance(event.widget, TextArea):
            self._stop_editing()

    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    def load_text(self, text: str) -> None:
        self.query_one(TextArea).load_text(text)
        self._settled_text = self.text

    @property
    def unapplied_edits(self) -> bool:
        """Edits that quitting would lose: typed and not applied, or applied but waiting for a restart."""
        return self.pending_restart is not None or (self.is_mounted and self.text != self._settled_text)

    def set_running(self, config: Config, text: str | None = None) -> None:
        """The engine now runs ``config`` (after a restart): reset the buffer to it."""
        self.running = config
        self.pending_restart = None
        self.set_class(False, "-needs-restart")
        self.load_text(text if text is not None else dump_config(config))
        self.app.refresh_bindings()
        self._say("Running this config.", "-ok")

    def follow_engine(self, config: Config) -> None:
        """The engine's effective config changed: show it, unless the user is mid-edit.

        An edited buffer is kept (Revert shows the engine's values); Apply then compares
        against what the engine really runs.
        """
        untouched = self.text == dump_config(self.running)
        if flat_fields(config) == flat_fields(self.running):
            return
        self.running = config
        if untouched:
            self.load_text(dump_config(config))
        else:
            self._say("The running config changed (LR keys or a recovery); Revert shows it.", "")

    def _say(self, message: Content | str, kind: str) -> None:
        box = self.query_one(".problems", Static)
        for css_class in ("-error", "-restart", "-ok"):
            box.set_class(css_class == kind, css_class)
        box.content = message

    @on(Button.Pressed, "#config-apply")
    def action_apply(self) -> None:
        """Validate the buffer; on success patch live fields and mark the rest."""
        text = self.text
        try:
            edited = load_config_text(text, base_dir=self.running.base_dir, source="config")
        except ConfigError as error:
            self.problems = [str(problem) for problem in error.problems]
            lines = [p.line for p in error.problems if p.line]
            message = Content("\n").join(
                [Content.styled(f"Not applied: {len(error.problems)} problem(s); the run is unchanged.", "bold")]
                + [Content(str(problem)) for problem in error.problems]
            )
            self._say(message, "-error")
            if lines:
                # The cursor goes to the line, not a selection of it: the next key typed
                # would replace the whole line.
                editor = self.query_one(TextArea)
                editor.move_cursor((lines[0] - 1, 0), center=True)
            return
        self.problems = []
        self._settled_text = text
        changes = config_changes(self.running, edited)
        live = {key: value for key, value in changes.items() if key in LIVE_FIELDS}
        restart = sorted(key for key in changes if key not in LIVE_FIELDS)
        if live:
            self.post_message(self.PatchRequested(live))
            self.running = self.running.copy_with(live)
        self.pending_restart = edited if restart else None
        self.set_class(bool(restart), "-needs-restart")
        self.app.refresh_bindings()  # R (restart) shows in the footer only with something to restart
        if restart:
            parts = [f"needs restart: {', '.join(restart)}"]
            if live:
                parts.insert(0, f"applied live: {', '.join(sorted(live))}")
            self._say("\n".join(parts) + "\n(R restarts: a new run from the last checkpoint with this config.)", "-restart")
        elif live:
            self._say(f"applied live: {', '.join(f'{k} = {v!r}' for k, v in sorted(live.items()))}", "-ok")
        else:
            self._say("No changes from the running config.", "-ok")

    @on(Button.Pressed, "#config-revert")
    def action_revert(self) -> None:
        self.load_text(dump_config(self.running))
        self.pending_restart = None
        self.set_class(False, "-needs-restart")
        self.app.refresh_bindings()
        self._say("Reverted to the running config.", "")

    @on(Button.Pressed, "#config-restart")
    def action_restart(self) -> None:
        if self.pending_restart is not None:
            self.post_message(self.RestartRequested(self.pending_restart))
