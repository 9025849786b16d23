"""The engine failed: its summary and the traceback text, in a modal that keeps the app alive."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static, TextArea


class ErrorScreen(ModalScreen[None]):
    """Shows ``summary`` and a read-only, scrollable, selectable traceback."""

    BINDINGS = [Binding("escape,enter", "dismiss_error", "Close", tooltip="Close; the cockpit stays open")]
    DEFAULT_CSS = """
    ErrorScreen { align: center middle; }
    ErrorScreen > Vertical {
        width: 90%; height: 80%; padding: 0 1;
        border: thick $error; background: $surface;
    }
    ErrorScreen .summary { text-style: bold; color: $text-error; margin: 1 0; }
    ErrorScreen .hint { color: $text-muted; }
    ErrorScreen TextArea { height: 1fr; }
    ErrorScreen Button { margin-top: 1; }
    """

    def __init__(self, title: str, summary: str, traceback: str, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.summary = summary
        self.traceback = traceback
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.summary, classes="summary", markup=False)
            if self.hint:
                yield Static(self.hint, classes="hint", markup=False)
            yield TextArea(self.traceback or "(no traceback)", read_only=True, soft_wrap=False, id="traceback")
            yield Button("Close (esc)", variant="error", compact=True)

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_dismiss_error(self) -> None:
        self.dismiss(None)
