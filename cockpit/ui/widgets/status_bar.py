"""The one-line run summary at the top: state in words and colour, progress, speed, LR."""

from __future__ import annotations

import re

from textual.content import Content
from textual.widgets import Static

from cockpit.engine.events import Outcome, RunState, StartupPhase
from cockpit.durations import format_duration
from cockpit.progress import describe
from cockpit.ui.state import CockpitState
from cockpit.ui.static_text import show_text

_STATE_CLASSES = {
    RunState.IDLE: "-idle",
    RunState.RUNNING: "-running",
    RunState.PAUSED: "-paused",
    RunState.STOPPING: "-stopping",
    RunState.FINISHED: "-finished",
    RunState.FAILED: "-failed",
}
_ICONS = {
    RunState.IDLE: "…",
    RunState.RUNNING: "▶",
    RunState.PAUSED: "⏸",
    RunState.STOPPING: "■",
    RunState.FINISHED: "✔",
    RunState.FAILED: "✖",
}


_STARTUP_DETAIL = {
    StartupPhase.CHECKING_DATA: "checking data",
    StartupPhase.BUILDING_MODEL: "building model",
    StartupPhase.STARTING: "first iteration",
}

_TIMESTAMP = re.compile(r"-\d{8}-\d{6}(-\d+)?$")


def format_lr(lr: float | None) -> str:
    return "--" if lr is None else f"{lr:.3g}" if lr >= 1e-3 else f"{lr:.2e}"


class StatusBar(Static):
    """Run name, state, epoch/iteration, it/s, ETA, LR and device, and a long wait under
    way (``evaluating 1,200/5,000 val images (40/s, ETA 1m35s)``); state is a CSS class."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    StatusBar .state { text-style: bold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._state: CockpitState | None = None

    def on_resize(self) -> None:
        if self._state is not None:
            self.show_state(self._state)

    def show_state(self, state: CockpitState) -> None:
        self._state = state
        for run_state, css_class in _STATE_CLASSES.items():
            self.set_class(state.state is run_state, css_class)
        content = self.render_state(state, self.content_region.width)
        show_text(self, content)
        # The bar packs its own lines; an explicit height makes the screen re-lay it out
        # when the count changes (an auto height kept its first value in a real terminal).
        lines = len(content.split("\n"))
        if self.styles.height is None or self.styles.height.value != lines:
            self.styles.height = lines

    @staticmethod
    def render_state(state: CockpitState, width: int = 0) -> Content:
        """The bar's text; with ``width``, it is shortened field by field to fit one line.

        The state is never dropped: first the long forms give way to short ones, then the
        last-checkpoint note goes, then the run name is cut; only a terminal too narrow
        for all that gets a second line."""
        for compact, saved in ((False, True), (True, True), (True, False)):
            parts = _fields(state, compact, saved)
            line = Content("  " if not compact else " ").join(parts)
            if not width or line.cell_length <= width:
                return line
        name_at = 1
        overflow = line.cell_length - width
        name = parts[name_at].plain
        keep = max(6, len(name) - overflow - 1)
        if keep < len(name):
            parts[name_at] = Content.styled(name[:keep] + "…", "bold")
        line = Content(" ").join(parts)
        return line if line.cell_length <= width else pack(parts, width, " ")


def _fields(state: CockpitState, compact: bool, saved: bool) -> list[Content]:
    """The bar's fields, long (``compact`` False) or short forms."""
    colour = {
        RunState.RUNNING: "$text-success",
        RunState.PAUSED: "$text-warning",
        RunState.STOPPING: "$text-warning",
        RunState.FINISHED: "$text-primary",
        RunState.FAILED: "$text-error",
    }.get(state.state, "$text-muted")
    label = state.state.value
    if state.state is RunState.FINISHED and state.outcome is Outcome.STOPPED:
        label = "STOPPED"
    # IDLE is a run that has not started yet: say so (the start-up's phase follows).
    starting = state.state is RunState.IDLE or (state.startup is not None and state.state is RunState.RUNNING)
    if starting:
        label = "STARTING"
    epoch = f"ep {state.epoch}" + (f"/{state.total_epochs}" if state.total_epochs else "")
    iters = f"it {state.iter}" + (f"/{state.total_iters}" if state.total_iters else "")
    speed = (f"{state.its:.2f} it/s" if not compact else f"{state.its:.1f}it/s") if state.its else "-- it/s"
    device = state.device or "?"
    if state.gpu_name and not compact:
        device = f"{device} ({state.gpu_name})"
    name = state.run_name or "run"
    if compact:
        # "shapes-20261130-063146" -> "shapes": the run folder's timestamp is the first to go.
        name = _TIMESTAMP.sub("", name) or name
    parts = [
        Content.styled(f"{_ICONS[state.state]} {label}", f"{colour} bold"),
        Content.styled(name, "bold"),
        Content(epoch),
        Content(iters),
        Content(speed),
        Content.assemble("ETA ", (format_duration(state.eta_seconds), "bold")),
        Content.assemble("lr ", (format_lr(state.lr), "bold")),
        Content(device),
    ]
    if saved and state.last_checkpoint_iter is not None:
        parts.append(Content.styled(f"saved it {state.last_checkpoint_iter}", "$text-muted"))
    if state.progress is not None:
        parts.append(Content.styled(describe(state.progress), "$text-accent"))
    elif starting and state.startup is not None:
        parts.append(Content.styled(_STARTUP_DETAIL[state.startup], "$text-accent"))
    flagged = len(state.flagged_rows)
    if flagged:
        parts.append(Content.styled(f"⚑ {flagged} flagged" if not compact else f"⚑{flagged}", "$text-error bold"))
    return parts


def pack(parts: list[Content], width: int, gap: str = "  ") -> Content:
    """Join fields with ``gap``, breaking lines between fields (never inside one)."""
    lines: list[list[Content]] = [[]]
    used = 0
    for part in parts:
        size = part.cell_length + (len(gap) if lines[-1] else 0)
        if width and lines[-1] and used + size > width:
            lines.append([])
            used, size = 0, part.cell_length
        lines[-1].append(part)
        used += size
    return Content("\n").join(Content(gap).join(line) for line in lines)
