"""Ask for an exact learning rate."""

from __future__ import annotations

import math

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from cockpit.config.schema import lr_problem


def parse_lr(text: str) -> float | None:
    """A finite float in (0, MAX_LR] (``1e-3``, ``0.005``), else None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and lr_problem(value) is None else None


class SetLRScreen(ModalScreen["float | None"]):
    """Dismisses with the new LR, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Keep the current LR")]
    DEFAULT_CSS = """
    SetLRScreen { align: center middle; }
    SetLRScreen > Vertical {
        width: 50; max-width: 95%; height: auto; padding: 0 1;
        border: thick $primary; background: $surface;
    }
    SetLRScreen .error { color: $text-error; height: auto; }
    SetLRScreen .hint { color: $text-muted; }
    """

    def __init__(self, current: float | None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Set learning rate"
            now = f"{self.current:.3g}" if self.current is not None else "unknown"
            yield Static(f"Current LR: {now}. The schedule continues from the new value.", classes="hint")
            example = f"e.g. {self.current / 2:g}" if self.current is not None else "e.g. 0.001"
            yield Input(placeholder=example, id="lr")
            yield Static("", classes="error")
            yield Static("enter: set · esc: cancel", classes="hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = parse_lr(event.value)
        if value is None:
            self.query_one(".error", Static).content = lr_problem(event.value.strip()) or f"Not a number: {event.value!r}"
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
