"""The checklist pane: one row per diagnostic rule, with what to do about a flagged one.

Rows read ``state  symptom  evidence``; FLAGGED rows are drawn in the theme's error
colour. Moving the cursor onto a row shows its evidence, likely cause and fix below.
A flagged non-finite loss also offers the engine's recoveries (rewind and skip the bad
batch, optionally with a lower LR or gradient clipping) as buttons.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from cockpit.diagnostics.checklist import ChecklistRow
from cockpit.diagnostics.flags import CheckState
from cockpit.engine.commands import Command, RewindSkip
from cockpit.engine.events import Severity
from cockpit.ui.state import CockpitState
from cockpit.ui.static_text import show_text

# The recoveries offered after a NaN/Inf loss: (button label, command).
RECOVERIES: tuple[tuple[str, str, Command], ...] = (
    ("rewind-lr", "Rewind, LR ×0.1", RewindSkip(lr_factor=0.1)),
    ("rewind-clip", "Rewind, clip grads 10", RewindSkip(grad_clip=10.0)),
    ("rewind-skip", "Rewind, skip batch", RewindSkip()),
)

_BADGES = {
    CheckState.OK: ("  OK    ", "$text-success bold"),
    CheckState.FLAGGED: ("FLAGGED ", "$text-error bold"),
    CheckState.NOT_CHECKED: (" --     ", "$text-muted"),
}


def _flag_style(row: ChecklistRow) -> str:
    """Errors in the error colour, warnings and infos in the warning colour."""
    return "$text-error bold" if row.severity is Severity.ERROR else "$text-warning bold"


def row_prompt(row: ChecklistRow, width: int) -> Content:
    text, style = _BADGES[row.state]
    if row.flagged:
        style = _flag_style(row)
    title = row.title
    evidence = row.evidence.replace("\n", " ")
    room = max(0, width - len(text) - len(title) - 2)
    if room < 8:
        evidence = ""
    elif len(evidence) > room:
        evidence = evidence[: room - 1] + "…"
    title_style = _flag_style(row) if row.flagged else ("" if row.state is CheckState.OK else "$text-muted")
    return Content.assemble((text, style), (title, title_style), "  ", (evidence, "$text-muted"))


def row_details(row: ChecklistRow, current_iter: int = 0) -> Content:
    """The highlighted row in full. ``current_iter``: where the run is now.

    A live rule reports when its verdict changes, so an OK row's evidence is as of the
    iteration it turned OK; the text says so, and that nothing was flagged since."""
    state = (row.state.value, _BADGES[row.state][1] if not row.flagged else _flag_style(row))
    severity = f" ({row.severity.value})" if row.flagged and row.severity else ""
    live_ok = row.state is CheckState.OK and row.stage != "preflight" and row.iter
    when = f"  since it {row.iter}" if live_ok else f"  at it {row.iter}" if row.iter else ""
    evidence = row.evidence or "—"
    if live_ok:
        evidence += f" (at it {row.iter})"
    lines = [
        Content.assemble((row.title, "bold"), "  ", state, severity, when),
        Content.assemble(("evidence  ", "$text-muted"), evidence),
    ]
    if live_ok and current_iter > row.iter:
        lines.append(Content.styled(f"Still OK at it {current_iter}: no flag raised since it {row.iter}.", "$text-muted"))
    if row.flagged:
        lines.append(Content.assemble(("cause     ", "$text-muted"), row.likely_cause or "—"))
        lines.append(Content.assemble(("fix       ", "$text-warning"), row.fix or "—"))
    elif row.state is CheckState.NOT_CHECKED:
        when = "before training (cockpit check / pre-flight)" if row.stage == "preflight" else "as the run goes"
        lines.append(Content.styled(f"Checked {when}.", "$text-muted"))
    return Content("\n").join(lines)


class ChecklistPanel(Vertical, can_focus=False):
    """Rows of the debugging checklist; the highlighted row's details and recoveries below."""

    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    ChecklistPanel > OptionList, ChecklistPanel > OptionList:focus {
        height: 1fr; min-height: 4; border: none; padding: 0; background: transparent;
    }
    ChecklistPanel > .details { height: auto; max-height: 10; padding: 0 1; background: $boost; }
    ChecklistPanel > .recoveries { height: auto; display: none; }
    ChecklistPanel.-nan-flagged > .recoveries { display: block; }
    ChecklistPanel > .recoveries Button { margin: 0 1 0 0; min-width: 10; }
    """

    class RecoveryChosen(Message):
        """The user picked a recovery for a flagged non-finite loss."""

        def __init__(self, command: Command) -> None:
            super().__init__()
            self.command = command

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rows: list[ChecklistRow] = []
        self._iter = 0
        self._picked: str | None = None

    def compose(self) -> ComposeResult:
        yield OptionList()
        yield Static(classes="details")
        with Horizontal(classes="recoveries"):
            for button_id, label, _ in RECOVERIES:
                yield Button(label, id=button_id, variant="warning", compact=True)

    def on_mount(self) -> None:
        self.border_title = "3 Checklist"

    def show_state(self, state: CockpitState) -> None:
        self._iter = state.iter
        # Flagged rows first (worst first), then the rest in catalog order.
        self._rows = state.checklist.flagged() + [row for row in state.checklist.rows() if not row.flagged]
        option_list = self.query_one(OptionList)
        width = max(20, option_list.scrollable_content_region.width or self.content_region.width)
        option_list.set_options(Option(row_prompt(row, width), id=row.rule) for row in self._rows)
        # The cursor stays on the rule the user picked (rows move when flags rise);
        # until they pick one it sits on the top row, the worst flag.
        ids = [row.rule for row in self._rows]
        option_list.highlighted = ids.index(self._picked) if self._picked in ids else 0
        nonfinite = state.checklist.get("nonfinite_loss")
        self.set_class(nonfinite.flagged, "-nan-flagged")
        self.set_class(bool(state.flagged_rows), "-flagged")
        self._show_details()

    def show_iteration(self, iteration: int) -> None:
        """The run moved on: keep the details' "still OK at it N" current (one Static update)."""
        if iteration != self._iter:
            self._iter = iteration
            self._show_details()

    def on_resize(self) -> None:
        # The list's own size settles after ours: re-fit the rows once it has.
        self.call_after_refresh(self._refit_rows)

    def _refit_rows(self) -> None:
        option_list = self.query_one(OptionList)
        width = max(20, option_list.scrollable_content_region.width)
        for index, row in enumerate(self._rows):
            option_list.replace_option_prompt_at_index(index, row_prompt(row, width))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.has_focus:
            self._picked = event.option.id
        self._show_details()

    def _show_details(self) -> None:
        index = self.query_one(OptionList).highlighted
        details = self.query_one(".details", Static)
        if index is None or not (0 <= index < len(self._rows)):
            show_text(details, Content(""))
            return
        show_text(details, row_details(self._rows[index], self._iter))

    @on(Button.Pressed, ".recoveries Button")
    def _recovery(self, event: Button.Pressed) -> None:
        event.stop()
        for button_id, _, command in RECOVERIES:
            if event.button.id == button_id:
                self.post_message(self.RecoveryChosen(command))
