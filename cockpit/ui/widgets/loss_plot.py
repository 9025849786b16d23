"""The losses pane: the four Faster R-CNN terms and their total over iterations, AP50 beside.

The widget only draws. It reads a :class:`~cockpit.ui.state.LossHistory` (owned by the
app's view-model) through ``view(width, ...)``, which hands back at most one bucket per
column, so a redraw costs the same at iteration 100 and at iteration 1,000,000.

The chart is drawn here, in braille dots (2 x 4 per cell), with numpy: each curve becomes
the band of dots its line crosses in every dot column, so the cost is O(pane area) and a
redraw takes a few milliseconds. (plotext drew the same picture in 30-50 ms on a 2-core
CPU, most of it interpolating line segments point by point; see BENCHMARKS.md.)
"""

from __future__ import annotations

import math
import time

import numpy as np
from rich.style import Style
from rich.text import Span, Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from cockpit.loss_names import SHORT_NAMES, loss_label
from cockpit.ui.state import SERIES, SMOOTHING, WINDOWS, LossHistory

# One key and one colour per series. The colours are the 16 ANSI ones (and "default", the
# terminal's own foreground), which every terminal maps to something readable on its own
# background; the legend uses the same ANSI names.
SERIES_KEYS: dict[str, str] = {
    "loss_classifier": "c",
    "loss_box_reg": "x",
    "loss_objectness": "o",
    "loss_rpn_box_reg": "v",
    "loss": "t",
}
PLOT_COLOURS: dict[str, str] = {
    "loss_classifier": "blue",
    "loss_box_reg": "magenta",
    "loss_objectness": "green",
    "loss_rpn_box_reg": "cyan",
    "loss": "default",
}
LEGEND_STYLES: dict[str, str] = {
    "loss_classifier": "ansi_blue",
    "loss_box_reg": "ansi_magenta",
    "loss_objectness": "ansi_green",
    "loss_rpn_box_reg": "ansi_cyan",
    "loss": "$foreground bold",
}
AP_COLOUR, AP_STYLE = "yellow", "ansi_yellow"

# Braille dot bits by (row within the cell, column within the cell): U+2800 + the sum.
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)
_CELL_CHARS = [" "] + [chr(0x2800 + code) for code in range(1, 256)]
_AP_OWNER = -2
"""Cell owner of an AP50 marker (curves own 0..n-1; -1 is an empty cell)."""


class _Chart(Widget):
    """The chart canvas; everything it draws comes from its parent's settings.

    The result is kept until the data, the settings, the size or the theme change (a
    focus change or a notification repaints the pane without rebuilding it).
    """

    def __init__(self, owner: "LossPlot", **kwargs) -> None:
        super().__init__(**kwargs)
        self._owner = owner
        self._cache: tuple[tuple, object] | None = None

    def render(self):
        key = (self._owner.version, self.size.width, self.size.height, self.app.theme)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        started = time.perf_counter()
        try:
            rendered = self._owner.draw(self.size.width, self.size.height)
        except Exception as error:  # noqa: BLE001 - odd data must not take the cockpit down
            rendered = Content.styled(f"cannot draw the plot: {type(error).__name__}: {error}", "$text-error")
        self._owner.build_seconds = time.perf_counter() - started
        self._cache = (key, rendered)
        return rendered


class LossPlot(Vertical, can_focus=True):
    """Loss terms (toggle each), log scale, EMA smoothing, window; AP50 on the right axis."""

    ALLOW_MAXIMIZE = True
    BINDINGS = [
        *(
            Binding(key, f"toggle_series('{name}')", f"{SHORT_NAMES[name]}", show=False, tooltip=f"Show/hide {name}")
            for name, key in SERIES_KEYS.items()
        ),
        Binding("g", "toggle_log", "log", tooltip="Log scale on/off", show=False),
        Binding("m", "cycle_smoothing", "smooth", tooltip="Cycle EMA smoothing", show=False),
        Binding("w", "cycle_window", "window", tooltip="Cycle window: all / last N iterations", show=False),
    ]
    DEFAULT_CSS = """
    LossPlot { height: 1fr; }
    LossPlot > .legend { height: auto; }
    LossPlot > _Chart { height: 1fr; }
    """

    hidden: reactive[frozenset[str]] = reactive(frozenset())
    log_scale: reactive[bool] = reactive(False)
    smoothing: reactive[float] = reactive(0.0)
    window: reactive[int] = reactive(0)

    def __init__(self, history: LossHistory | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history or LossHistory()
        self.evals: list[tuple[int, float]] = []
        self.version = 0
        """Bumped whenever what the chart shows changes (its render cache key)."""
        self.build_seconds = 0.0
        """How long the last chart build took: the app spaces plot redraws by it."""

    def compose(self) -> ComposeResult:
        yield Static(classes="legend")
        yield _Chart(self)

    def on_mount(self) -> None:
        self.border_title = "1 Losses"
        self.redraw()

    # -- data in ------------------------------------------------------------------------
    def show(self, history: LossHistory, evals: list[tuple[int, float]]) -> None:
        self.history = history
        self.evals = evals
        self.redraw()

    def redraw(self) -> None:
        self.version += 1
        if not self.is_mounted:
            return
        self.query_one(".legend", Static).content = self.legend()
        self.query_one(_Chart).refresh()

    def watch_hidden(self) -> None:
        self.redraw()

    def watch_log_scale(self) -> None:
        self.redraw()

    def watch_smoothing(self) -> None:
        self.redraw()

    def watch_window(self) -> None:
        self.redraw()

    # -- actions ------------------------------------------------------------------------
    def action_toggle_series(self, name: str) -> None:
        self.hidden = self.hidden ^ {name}

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale

    def action_cycle_smoothing(self) -> None:
        self.smoothing = SMOOTHING[(SMOOTHING.index(self.smoothing) + 1) % len(SMOOTHING)]

    def action_cycle_window(self) -> None:
        self.window = WINDOWS[(WINDOWS.index(self.window) + 1) % len(WINDOWS)]

    # -- drawing ------------------------------------------------------------------------
    def legend(self) -> Content:
        """The four terms on one line; the total, AP50 and the plot options below.

        torchvision's names when the four fit the pane on one line, their short forms when not."""
        width = self.content_region.width if self.is_mounted else 0
        terms = SERIES[:-1]
        line, short = None, True
        for short, gap in ((False, "  "), (False, " "), (True, "  ")):
            line = Content(gap).join(self._legend_entry(name, short) for name in terms)
            if width and line.cell_length <= width:
                break
        extras: list[Content] = [self._legend_entry(SERIES[-1], short)]
        if self.evals:
            extras.append(Content.assemble(("◆ AP50", AP_STYLE), f" {self.evals[-1][1]:.3f} (it {self.evals[-1][0]})"))
        extras.append(Content.styled(
            f"g {'log' if self.log_scale else 'linear'}  "
            f"m {f'ema {self.smoothing:g}' if self.smoothing else 'raw'}  "
            f"w {f'last {self.window} it' if self.window else 'all'}",
            "$text-muted",
        ))
        return Content("\n").join([line, Content("  ").join(extras)])

    def _legend_entry(self, name: str, short: bool) -> Content:
        key, label = SERIES_KEYS[name], loss_label(name, short)
        # Short names get a colour dot to be seen; the long ones carry the colour themselves.
        mark = "● " if short else ""
        if name in self.hidden:
            return Content.styled(f"{key} {'○ ' if short else ''}{label}", "$text-muted strike")
        value = self.history.latest.get(name)
        number = "--" if value is None else f"{value:.3f}" if math.isfinite(value) else str(value)
        return Content.assemble((f"{key} ", "$text-muted"), (mark + label, LEGEND_STYLES[name]), f" {number}")

    def on_resize(self) -> None:
        if self.is_mounted:
            self.query_one(".legend", Static).content = self.legend()

    def draw(self, width: int, height: int) -> Text:
        """The chart for a ``width`` x ``height`` canvas: y labels, braille curves, AP50 axis, x labels."""
        names = [name for name in SERIES if name not in self.hidden]
        if len(self.history) == 0:
            return Text("waiting for the first training step…", style="dim", justify="center")
        rows = height - 2  # the x axis and its labels below
        if rows < 2 or width < 24:
            return Text("(pane too small for the plot)", style="dim")
        # Room for the y labels is only known once the ticks are; 8 columns fits "1.23e-05".
        right = 4 if self.evals else 0
        columns = max(4, width - 9 - right)
        view = self.history.view(columns, self.window, self.smoothing, names)
        curves: list[tuple[str, list[float], list[float]]] = []
        for name in names:
            xs, ys = view.get(name, ([], []))
            if self.log_scale:
                keep = [(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]
                xs, ys = [p[0] for p in keep], [p[1] for p in keep]
            if xs:
                curves.append((name, xs, ys))
        if not curves:
            return Text("nothing to draw: every curve is hidden" + (" or <= 0 on a log scale" if self.log_scale else ""), style="dim")
        first_x = min(xs[0] for _, xs, _ in curves)
        last_x = max(xs[-1] for _, xs, _ in curves)
        low = min(min(ys) for _, _, ys in curves)
        high = max(max(ys) for _, _, ys in curves)
        if high - low < 1e-12:
            pad = abs(high) * 0.05 or 0.5
            low, high = low - pad, high + pad
        if last_x <= first_x:
            last_x = first_x + 1

        if self.log_scale:
            y_ticks = _log_ticks(low, high)
            y_labels = [f"{10 ** t:.3g}" for t in y_ticks]
        else:
            y_ticks = _linear_ticks(low, high, max(2, rows // 3))
            y_labels = [f"{t:.3g}" for t in y_ticks]
        label_width = max(len(label) for label in y_labels)
        columns = max(4, width - label_width - 1 - right)

        dots_x, dots_y = columns * 2, rows * 4
        codes = np.zeros((rows, columns), dtype=np.int64)
        owner = np.full((rows, columns), -1, dtype=np.int64)
        for index, (name, xs, ys) in enumerate(curves):
            px = (np.asarray(xs, dtype=np.float64) - first_x) / (last_x - first_x) * (dots_x - 1)
            py = (np.asarray(ys, dtype=np.float64) - low) / (high - low) * (dots_y - 1)
            cells = _braille(_band(px, py, dots_x), dots_y)
            codes |= cells
            owner[cells > 0] = index  # later curves (the total last) draw on top

        if self.evals:
            # AP50 diamonds on their own 0..1 axis; they own their cell (drawn on top).
            for x, y in self.evals:
                if first_x <= x <= last_x and math.isfinite(y):
                    column = int((x - first_x) / (last_x - first_x) * (dots_x - 1)) // 2
                    row = rows - 1 - int(min(1.0, max(0.0, y)) * (dots_y - 1)) // 4
                    owner[row, column] = _AP_OWNER

        tick_rows: dict[int, str] = {}
        for tick, label in zip(y_ticks, y_labels):
            row = rows - 1 - int(round((tick - low) / (high - low) * (dots_y - 1))) // 4
            if 0 <= row < rows:
                tick_rows.setdefault(row, label)
        ap_rows = {rows - 1: "0", rows - 1 - (dots_y - 1) // 8: ".5", 0: "1"} if self.evals else {}

        # One plain string and a list of spans: far cheaper than a Text.append per run.
        styles = {index: Style(color=None if PLOT_COLOURS[name] == "default" else PLOT_COLOURS[name]) for index, (name, _, _) in enumerate(curves)}
        styles[_AP_OWNER] = ap_style = Style(color=AP_COLOUR)
        axis_style = Style(dim=True)
        parts: list[str] = []
        spans: list[Span] = []
        offset = 0
        for row in range(rows):
            label = tick_rows.get(row)
            prefix = (label or "").rjust(label_width) + ("┤" if label else "│")
            spans.append(Span(offset, offset + len(prefix), axis_style))
            offset += len(prefix)
            owner_row = owner[row]
            chars = [_CELL_CHARS[code] for code in codes[row].tolist()]
            for column in np.flatnonzero(owner_row == _AP_OWNER).tolist():
                chars[column] = "◆"
            # Runs of one owner: boundaries where the owner changes.
            edges = [0, *(np.flatnonzero(np.diff(owner_row)) + 1).tolist(), columns]
            for start, end in zip(edges, edges[1:]):
                who = int(owner_row[start])
                if who >= 0 or who == _AP_OWNER:
                    spans.append(Span(offset + start, offset + end, styles[who]))
            parts.append(prefix + "".join(chars))
            offset += columns
            if right:
                tail = " " + ap_rows.get(row, "").ljust(right - 1)
                spans.append(Span(offset, offset + len(tail), ap_style))
                parts.append(tail)
                offset += len(tail)
            parts.append("\n")
            offset += 1

        x_ticks = _int_ticks(first_x, last_x, max(2, columns // 16))
        axis = ["─"] * columns
        labels = [" "] * (columns + right + 8)
        free_from = 0
        for tick in x_ticks:
            column = int(round((tick - first_x) / (last_x - first_x) * (dots_x - 1))) // 2
            if not 0 <= column < columns:
                continue
            axis[column] = "┬"
            label = str(tick)
            start = max(0, column - len(label) // 2)
            if start >= free_from:
                labels[start : start + len(label)] = list(label)
                free_from = start + len(label) + 1
        axis_line = " " * label_width + "└" + "".join(axis) + "\n"
        label_line = " " * (label_width + 1) + "".join(labels[: columns + right]).rstrip()
        spans.append(Span(offset, offset + len(axis_line) + len(label_line), axis_style))
        parts += [axis_line, label_line]
        text = Text("".join(parts), no_wrap=True, overflow="crop")
        text.spans = spans
        return text


def _band(px: np.ndarray, py: np.ndarray, dots_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest dot row the polyline (px, py) crosses in each dot column (NaN: none)."""
    lo = np.full(dots_x, np.nan)
    hi = np.full(dots_x, np.nan)
    if px.size == 1:
        column = int(round(px[0]))
        lo[column] = hi[column] = py[0]
        return lo, hi
    columns = np.arange(dots_x, dtype=np.float64)
    inside = (columns >= px[0]) & (columns <= px[-1])
    at = np.where(inside, np.interp(columns, px, py), np.nan)
    # A segment through a column spans from its value at this column to the next one's...
    following = np.append(at[1:], np.nan)
    lo = np.fmin(at, following)
    hi = np.fmax(at, following)
    # ...and every vertex inside the column (the peaks of an envelope live there).
    vertex_columns = np.clip(np.floor(px).astype(np.int64), 0, dots_x - 1)
    np.fmin.at(lo, vertex_columns, py)
    np.fmax.at(hi, vertex_columns, py)
    return lo, hi


def _braille(band: tuple[np.ndarray, np.ndarray], dots_y: int) -> np.ndarray:
    """(rows, columns) braille codes (0: empty cell) of the dots between ``lo`` and ``hi``."""
    lo, hi = band
    dots_x = lo.size
    valid = ~np.isnan(lo)
    lo_dot = np.where(valid, np.clip(np.round(np.nan_to_num(lo)), 0, dots_y - 1), 1)
    hi_dot = np.where(valid, np.clip(np.round(np.nan_to_num(hi)), 0, dots_y - 1), 0)
    # Dot rows counted from the top, as the cells are printed.
    height = np.arange(dots_y - 1, -1, -1, dtype=np.float64)[:, None]
    lit = (height >= lo_dot[None, :]) & (height <= hi_dot[None, :])
    cells = lit.reshape(dots_y // 4, 4, dots_x // 2, 2)
    return np.einsum("rics,is->rc", cells.astype(np.int64), _DOT_BITS)


def _linear_ticks(low: float, high: float, count: int) -> list[float]:
    """At most about ``count`` round ticks (1, 2, 2.5, 5 x 10^k steps) inside [low, high]."""
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9 * step and len(ticks) < 50:
        ticks.append(round(value, 12))
        value += step
    return ticks or [low, high]


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick positions (log10 units) at 1, 2, 5 x 10^k inside [low, high]."""
    if high - low < 1e-9:
        return [low]
    ticks = []
    for exponent in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            value = exponent + math.log10(mantissa)
            if low - 1e-9 <= value <= high + 1e-9:
                ticks.append(value)
    if len(ticks) < 2:
        ticks = [low, high]
    return ticks


def _int_ticks(low: float, high: float, count: int) -> list[int]:
    """About ``count`` round integer ticks covering [low, high]."""
    low, high = int(math.floor(low)), int(math.ceil(high))
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    steps = [m * magnitude for m in (1, 2, 2.5, 5, 10) if float(m * magnitude).is_integer()]
    step = int(next((m for m in steps if m >= raw), 10 * magnitude))
    start = -(-low // step) * step
    ticks = list(range(int(start), high + 1, int(step)))
    return ticks or [low, high]
