"""The key reference (``?``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

PANE_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Losses", "c x o v t", "show/hide loss_classifier (cls), loss_box_reg (box), loss_objectness (rpn_obj), loss_rpn_box_reg (rpn_box), total"),
    ("Losses", "g / m / w", "log scale / EMA smoothing / window (all, last N it)"),
    ("Losses", "B", "pick a baseline run to draw faintly behind the curves"),
    ("Losses", "l", "show/hide the validation loss (× marks, one per evaluation)"),
    ("Checklist", "↑ ↓", "pick a row to see evidence, cause and fix"),
    ("Preview", "d", "GT + predictions / GT only / predictions only"),
    ("Preview", "a", "assignment overlay: GT only / positive anchors / sampled proposals / off"),
    ("Config", "enter / i", "start editing the TOML (until then every cockpit key works here)"),
    ("Config", "esc", "stop editing (so does tab, to the next pane)"),
    ("Config", "ctrl+s / ctrl+r", "apply the edited TOML / revert to the running config"),
    ("Config", "ctrl+q / f1", "quit / help while editing (q and ? type)"),
    ("Modals", "y / n / esc", "confirm / cancel"),
)


class HelpScreen(ModalScreen[None]):
    """Global keys (from the app's bindings) and each pane's own keys."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", tooltip="Close the help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 88; max-width: 98%; height: auto; max-height: 95%; padding: 0 1;
        border: thick $primary; background: $surface;
    }
    """

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        lines = [Content.styled("Everywhere", "bold $text-primary")]
        column = max([14] + [len(key) + 2 for key, _ in self.keys])
        for key, description in self.keys:
            lines.append(Content.assemble((f"  {key:<{column}}", "bold"), description))
        lines.append(Content(""))
        lines.append(Content.styled("In a focused pane", "bold $text-primary"))
        for pane, key, description in PANE_KEYS:
            lines.append(Content.assemble((f"  {key:<{column}}", "bold"), (f"{pane:<10}", "$text-muted"), description))
        lines.append(Content(""))
        lines.append(Content.styled("ctrl+p opens the command palette: every action by name. esc closes this.", "$text-muted"))
        with VerticalScroll() as box:
            box.border_title = "cockpit keys"
            box.border_subtitle = "↑ ↓ pgup pgdn scroll · esc closes"
            yield Static(Content("\n").join(lines))

    def action_close(self) -> None:
        self.dismiss(None)
