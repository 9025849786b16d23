"""The engine paused on a non-finite loss: pick a recovery or stay paused."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from cockpit.engine.commands import Command
from cockpit.ui.widgets.checklist_panel import RECOVERIES


class NaNScreen(ModalScreen["Command | None"]):
    """Dismisses with a ``RewindSkip`` command, or None to stay paused."""

    BINDINGS = [
        Binding("1", "choose(0)", "Rewind, LR x0.1", tooltip="Restore the last good state, skip the batch, LR x0.1"),
        Binding("2", "choose(1)", "Rewind, clip 10", tooltip="Restore, skip the batch, clip gradients at norm 10"),
        Binding("3", "choose(2)", "Rewind, skip", tooltip="Restore the last good state and skip the batch"),
        Binding("escape", "choose(-1)", "Stay paused", tooltip="Keep the run paused; decide later"),
    ]
    DEFAULT_CSS = """
    NaNScreen { align: center middle; }
    NaNScreen > Vertical {
        width: 84; max-width: 98%; height: auto; max-height: 90%; padding: 0 1;
        border: thick $error; background: $surface;
    }
    NaNScreen .summary { text-style: bold; color: $text-error; margin: 1 0; }
    NaNScreen .evidence { margin-bottom: 1; }
    NaNScreen .choices { layout: grid; grid-size: 2; grid-gutter: 0 2; height: auto; margin-bottom: 1; }
    NaNScreen Button { width: 1fr; }
    """

    def __init__(self, summary: str, evidence: str = "", fix: str = "") -> None:
        super().__init__()
        self.summary = summary
        self.evidence = evidence
        self.fix = fix

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Non-finite loss: the run is paused"
            yield Static(self.summary, classes="summary", markup=False)
            if self.evidence:
                yield Static(f"Evidence: {self.evidence}", classes="evidence", markup=False)
            if self.fix:
                yield Static(f"Fix: {self.fix}", classes="evidence", markup=False)
            yield Static("Recover from the last good state (keys 1-3), or stay paused (esc):", markup=False)
            with Container(classes="choices"):
                for number, (button_id, label, _) in enumerate(RECOVERIES, start=1):
                    yield Button(f"{number} {label}", id=button_id, variant="warning", compact=True)
                yield Button("esc Stay paused", id="stay", compact=True)

    def action_choose(self, index: int) -> None:
        self.dismiss(RECOVERIES[index][2] if 0 <= index < len(RECOVERIES) else None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        for index, (button_id, _, _) in enumerate(RECOVERIES):
            if event.button.id == button_id:
                self.action_choose(index)
                return
        self.action_choose(-1)
