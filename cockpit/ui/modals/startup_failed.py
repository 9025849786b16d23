"""The run could not start: why (each pre-flight error with its fix), and what to do next."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from cockpit.diagnostics.checklist import ChecklistRow


class StartupFailedScreen(ModalScreen[bool]):
    """Dismisses with True to quit the cockpit (``q``), False to look around first (``esc``).

    ``rows``: the checklist's error rows when the pre-flight refused the data (each shown
    with its evidence and fix); otherwise ``detail`` (a traceback) is shown as text.
    """

    BINDINGS = [
        Binding("q", "quit_now", "Quit", tooltip="Quit the cockpit (nothing was trained)"),
        Binding("escape", "look_around", "Close", tooltip="Close this window; the checklist keeps the details"),
    ]
    DEFAULT_CSS = """
    StartupFailedScreen { align: center middle; }
    StartupFailedScreen > Vertical {
        width: 100; max-width: 98%; height: auto; max-height: 90%; padding: 0 1;
        border: thick $error; background: $surface;
    }
    StartupFailedScreen .summary { text-style: bold; color: $text-error; margin: 1 0; }
    StartupFailedScreen VerticalScroll { height: auto; max-height: 24; }
    StartupFailedScreen .error-title { text-style: bold; }
    StartupFailedScreen .fix { color: $text-success; margin-bottom: 1; }
    StartupFailedScreen .hint { color: $text-muted; margin: 1 0; }
    StartupFailedScreen Horizontal { height: auto; }
    StartupFailedScreen Button { margin-right: 2; }
    """

    def __init__(self, summary: str, rows: list[ChecklistRow], detail: str = "", hint: str = "") -> None:
        super().__init__()
        self.summary = summary
        self.rows = rows
        self.detail = detail
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "The run could not start"
            yield Static(self.summary, classes="summary", markup=False)
            with VerticalScroll():
                for row in self.rows:
                    yield Static(row.title, classes="error-title", markup=False)
                    if row.evidence:
                        yield Static(row.evidence, markup=False)
                    if row.fix:
                        yield Static(f"Fix: {row.fix}", classes="fix", markup=False)
                if not self.rows and self.detail:
                    yield Static(self.detail, markup=False)
            if self.hint:
                yield Static(self.hint, classes="hint", markup=False)
            with Horizontal():
                yield Button("q Quit", id="quit", variant="error", compact=True)
                yield Button("esc Look around", id="stay", compact=True)

    def on_mount(self) -> None:
        self.query_one("#quit", Button).focus()

    def action_quit_now(self) -> None:
        self.dismiss(True)

    def action_look_around(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit")
