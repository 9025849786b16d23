"""The Labels pane: how Faster R-CNN assigned labels this step, over time, and the settings behind it.

It only draws what :class:`~cockpit.ui.labels_state.LabelsState` holds: the imbalance in
words, a small block-character time series per number (the last few hundred records,
decimated to the pane's width), and the ``[sampler]`` / ``[loss]`` values in force.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from cockpit.ui.labels_state import SPARK_SERIES, LabelsState, imbalance_lines, settings_lines, sparkline
from cockpit.ui.static_text import show_text

# Shares (0..1) are drawn on a fixed 0..1 scale so a flat line means "stuck", not "zoomed".
_UNIT_SCALE = {"roi_fg_frac", "cls_accuracy", "fg_cls_accuracy", "false_negative", "gt_no_anchor"}
_STYLES = {
    "roi_fg_frac": "ansi_green",
    "cls_accuracy": "ansi_blue",
    "fg_cls_accuracy": "ansi_magenta",
    "false_negative": "ansi_red",
    "gt_no_anchor": "ansi_yellow",
    "rpn_pos": "ansi_cyan",
}


class LabelsPanel(Vertical, can_focus=True):
    """Imbalance in words, telemetry sparklines, sampler and loss settings."""

    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    LabelsPanel > .words { height: auto; }
    LabelsPanel > .series { height: auto; margin: 1 0 0 0; }
    LabelsPanel > .settings { height: auto; margin: 1 0 0 0; color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._state: LabelsState | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="words")
        yield Static(classes="series")
        yield Static(classes="settings")

    def on_mount(self) -> None:
        self.border_title = "6 Labels"
        self.show_state(self._state or LabelsState())

    def on_resize(self) -> None:
        if self._state is not None:
            self.show_state(self._state)

    def show_state(self, state: LabelsState) -> None:
        self._state = state
        if not self.is_mounted:
            return
        # Below ~62 columns (the wide grid's middle pane) the same facts in shorter words.
        compact = 0 < self.content_region.width < 62
        words = imbalance_lines(state, compact)
        show_text(self.query_one(".words", Static), Content("\n").join(Content(line) for line in words))
        show_text(self.query_one(".series", Static), self._series(state))
        settings = settings_lines(state, compact)
        show_text(self.query_one(".settings", Static), Content("\n").join(Content(line) for line in settings))

    def _series(self, state: LabelsState) -> Content:
        if not state.latest:
            return Content("")
        width = max(8, self.content_region.width - 20)
        rows = []
        for key, label in SPARK_SERIES:
            values = state.values(key)
            scale = (0.0, 1.0) if key in _UNIT_SCALE else (None, None)
            if key == "roi_fg_frac":
                # Against the sampler's target: a full bar means the target is reached.
                target = state.sampler.get("roi_positive_fraction") or 1.0
                scale = (0.0, max([float(target), *values]))
            latest = state.latest.get(key)
            number = "–" if latest is None or latest != latest else (
                f"{100 * latest:5.1f}%" if key in _UNIT_SCALE else f"{latest:6.1f}"
            )
            rows.append(
                Content.assemble(
                    (f"{label:<11} ", "$text-muted"), (sparkline(values, width, *scale).ljust(width), _STYLES[key]),
                    f" {number}",
                )
            )
        return Content("\n").join(rows)
