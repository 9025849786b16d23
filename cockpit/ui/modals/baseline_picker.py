"""Pick a baseline run for the losses pane from the runs ``cockpit ls`` lists."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

CLEAR = ""
"""What the picker dismisses with when the user asks for no baseline."""


@dataclass(frozen=True)
class RunChoice:
    """One run on offer: its folder and the line that describes it."""

    run_dir: str
    label: str


class BaselinePickerScreen(ModalScreen["str | None"]):
    """Dismisses with a run folder, :data:`CLEAR` (no baseline), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Keep the current baseline")]
    DEFAULT_CSS = """
    BaselinePickerScreen { align: center middle; }
    BaselinePickerScreen > Vertical {
        width: 100; max-width: 95%; height: auto; max-height: 90%; padding: 0 1;
        border: thick $primary; background: $surface;
    }
    BaselinePickerScreen OptionList { height: auto; max-height: 20; }
    BaselinePickerScreen .hint { color: $text-muted; }
    """

    def __init__(self, runs: list[RunChoice], current: str | None = None) -> None:
        super().__init__()
        self.runs = runs
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Baseline run"
            if self.runs:
                yield Static("Its curves are drawn faintly behind this run's, by iteration.", classes="hint")
            else:
                yield Static("No other run found under this config's output directory "
                             "(or among detached runs). `cockpit run --baseline RUN_DIR` takes any folder.",
                             classes="hint")
            options = [Option(run.label, id=run.run_dir) for run in self.runs]
            if self.current is not None:
                options.insert(0, Option("(no baseline)", id="-clear-"))
            yield OptionList(*options)
            yield Static("enter: pick · esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        chosen = event.option.id or ""
        self.dismiss(CLEAR if chosen == "-clear-" else chosen)

    def action_cancel(self) -> None:
        self.dismiss(None)
