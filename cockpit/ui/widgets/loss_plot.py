"""The losses pane: the four Faster R-CNN terms and their total over iterations, AP50 beside.

The widget only draws. It reads a :class:`~cockpit.ui.loss_history.LossHistory` (owned by the
app's view-model) through ``view(width, ...)``, which hands back at most one bucket per
column, so a redraw costs the same at iteration 100 and at iteration 1,000,000. A
:class:`~cockpit.ui.baseline.Baseline` (also owned by the view-model) is drawn faintly
behind the live curves over the same iterations; its legend line says where the live run
stands against it. The braille chart itself is :mod:`cockpit.ui.braille_chart`.
"""

from __future__ import annotations

import math

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from cockpit.loss_names import loss_label
from cockpit.ui.baseline import Baseline
from cockpit.ui.braille_chart import Layer, Markers, fit_frame, place_markers, rasterise, render, x_range
from cockpit.ui.loss_history import SERIES, SHORT_NAMES, SMOOTHING, TOTAL, WINDOWS, LossHistory
from cockpit.ui.static_text import show_text

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
BASELINE_STYLE = "$text-muted"

# Cell owners in the chart: live curves own their index in SERIES, the baseline's
# (faint) curves that index + _GHOST; markers own negative ids.
_GHOST = 100
_AP_OWNER = -2
_GHOST_AP_OWNER = -3
_VAL = 200
"""Owners of the validation-loss markers: _VAL + the series' index (its colour)."""


class _Chart(Widget):
    """The chart canvas; everything it draws comes from its parent's settings.

    A line-API widget: the chart is drawn once into one strip per row, kept until the
    data, the settings, the size or the pane's colours change, and the compositor reads
    rows from it. (Returned from ``render()`` instead, the chart went through Textual's
    conversion of a Rich ``Text`` to ``Content`` and back on every repaint: in the running
    cockpit at 160 x 48, 19 ms of the chart's 23 ms a frame, five times the drawing.)
    """

    def __init__(self, owner: "LossPlot", **kwargs) -> None:
        super().__init__(**kwargs)
        self._owner = owner
        self._cache: tuple[tuple, list[Strip]] | None = None

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        return strips[y] if y < len(strips) else Strip.blank(self.size.width)

    def _strips(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        # Under each segment's own colours, the pane's (a line-API widget paints its own background).
        base = self.rich_style
        key = (self._owner.version, width, height, self.app.theme, base)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            rendered = self._owner.draw(width, height)
            strips = chart_strips(rendered, width, height, base) if _is_chart(rendered) else None
        except Exception as error:  # noqa: BLE001 - odd data must not take the cockpit down
            rendered = Text(f"cannot draw the plot: {type(error).__name__}: {error}", style="bold red")
            strips = None
        if strips is None:
            # A message (waiting, too small, an error): centred and wrapped as Rich lays it out.
            console = self.app.console
            options = console.options.update(width=max(1, width), height=None)
            lines = console.render_lines(rendered, options, pad=False)
            strips = [Strip(line).adjust_cell_length(width, base).apply_style(base) for line in lines[:height]]
        self._cache = (key, strips)
        return strips


def _is_chart(text: Text) -> bool:
    """The braille chart, not a message: rows that are never wrapped, justified or tabbed."""
    return bool(text.no_wrap) and text.justify in (None, "default", "left") and "\t" not in text.plain


def chart_strips(text: Text, width: int, height: int, base: Style) -> list[Strip]:
    """The chart's rows as strips, cut straight from its plain text and style spans.

    The chart is one unwrapped line per row with spans that never overlap, so each row's
    segments are its gaps (in ``base``) and its spans (``base`` + the span's style), each
    row cropped or padded to ``width``. Rich's general path (``Console.render_lines``:
    render, split, crop, measure) cost as much as drawing the chart itself; this one is a
    few slices a row. Only for the chart (see ``_is_chart``): messages that want centring
    or wrapping still go through Rich.
    """
    plain = text.plain
    line_base = base + Style.parse(text.style) if isinstance(text.style, str) else base + text.style
    spans = sorted(text.spans, key=lambda span: span.start)
    strips: list[Strip] = []
    first = 0  # the first span that may still reach the current line
    line_start = 0
    for line in plain.split("\n")[:height]:
        line_end = line_start + len(line)
        while first < len(spans) and spans[first].end <= line_start:
            first += 1
        segments: list[Segment] = []
        at = line_start
        index = first
        while index < len(spans) and spans[index].start < line_end:
            span = spans[index]
            start, end = max(span.start, line_start, at), min(span.end, line_end)
            if start < end:
                if start > at:
                    segments.append(Segment(plain[at:start], line_base))
                style = Style.parse(span.style) if isinstance(span.style, str) else span.style
                segments.append(Segment(plain[start:end], line_base + style))
                at = end
            index += 1
        if at < line_end:
            segments.append(Segment(plain[at:line_end], line_base))
        strips.append(Strip(segments).adjust_cell_length(width, base))
        line_start = line_end + 1
    return strips


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
        Binding("B", "pick_baseline", "baseline", key_display="B",
                tooltip="Pick a baseline run (from cockpit ls) to draw faintly behind these curves", show=False),
        Binding("l", "toggle_val", "val loss", tooltip="Show/hide the validation loss markers (×)", show=False),
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
    show_val: reactive[bool] = reactive(True)

    class BaselineRequested(Message):
        """``B`` was pressed: the app offers the runs to pick a baseline from."""

    def __init__(self, history: LossHistory | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history or LossHistory()
        self.evals: list[tuple[int, float]] = []
        self.baseline: Baseline | None = None
        self.loss_kinds: dict[str, str] = {}
        """Term -> the loss it is when not torchvision's (``{"loss_box_reg": "giou"}``), for the legend."""
        self.waiting_text = "waiting for the first training step…"
        """Shown until the first step: what the run is doing meanwhile (checking data...)."""
        self.val_losses: list[tuple[int, dict[str, float]]] = []
        """(iteration, val loss terms and total) of each evaluation: drawn as × in their curve's colour."""
        self.version = 0
        """Bumped whenever what the chart shows changes (its render cache key)."""

    def compose(self) -> ComposeResult:
        yield Static(classes="legend")
        yield _Chart(self)

    def on_mount(self) -> None:
        self.border_title = "1 Losses"
        self.redraw()

    # -- data in ------------------------------------------------------------------------
    def show(self, history: LossHistory, evals: list[tuple[int, float]], baseline: Baseline | None = None) -> None:
        self.history = history
        self.evals = evals
        self.baseline = baseline
        self.redraw()

    def redraw(self) -> None:
        self.version += 1
        if not self.is_mounted:
            return
        show_text(self.query_one(".legend", Static), self.legend())
        self.query_one(_Chart).refresh()

    def watch_hidden(self) -> None:
        self.redraw()

    def watch_log_scale(self) -> None:
        self.redraw()

    def watch_smoothing(self) -> None:
        self.redraw()

    def watch_window(self) -> None:
        self.redraw()

    def watch_show_val(self) -> None:
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

    def action_toggle_val(self) -> None:
        self.show_val = not self.show_val

    def action_pick_baseline(self) -> None:
        self.post_message(self.BaselineRequested())

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
        if width and line.cell_length > width:
            # Too narrow even for the short forms: two terms a line, never an entry cut in two.
            entries = [self._legend_entry(name, True) for name in terms]
            line = Content("\n").join([Content("  ").join(entries[:2]), Content("  ").join(entries[2:])])
        extras: list[Content] = [self._legend_entry(SERIES[-1], short)]
        if self.evals:
            extras.append(Content.assemble(("◆ AP50", AP_STYLE), f" {self.evals[-1][1]:.3f} (it {self.evals[-1][0]})"))
        if self.val_losses:
            last_iter, last = self.val_losses[-1]
            total = last.get("loss")
            text = f"l × val {total:.3f} (it {last_iter})" if total is not None else "l × val"
            extras.append(Content.styled(text, "$foreground" if self.show_val else "$text-muted strike"))
        extras.append(Content.styled(
            f"g {'log' if self.log_scale else 'linear'}  "
            f"m {f'ema {self.smoothing:g}' if self.smoothing else 'raw'}  "
            f"w {f'last {self.window} it' if self.window else 'all'}",
            "$text-muted",
        ))
        lines = [line, Content("  ").join(extras)]
        if self.baseline is not None:
            lines.append(self.baseline_legend())
        return Content("\n").join(lines)

    def _legend_entry(self, name: str, short: bool) -> Content:
        key, label = SERIES_KEYS[name], loss_label(name, short)
        kind = self.loss_kinds.get(name)
        label += f"({kind})" if kind else ""  # the loss chosen in [loss], when not torchvision's
        # Short names get a colour dot to be seen; the long ones carry the colour themselves.
        mark = "● " if short else ""
        if name in self.hidden:
            return Content.styled(f"{key} {'○ ' if short else ''}{label}", "$text-muted strike")
        value = self.history.latest.get(name)
        number = "--" if value is None else _number(value)
        return Content.assemble((f"{key} ", "$text-muted"), (mark + label, LEGEND_STYLES[name]), f" {number}")

    def on_resize(self) -> None:
        if self.is_mounted:
            show_text(self.query_one(".legend", Static), self.legend())

    def baseline_legend(self) -> Content:
        """``╌ vs NAME: total 0.412 (baseline 0.455 at it 1,200)`` for the first visible series."""
        baseline = self.baseline
        if baseline is None:
            return Content("")
        shown = [name for name in (TOTAL, *SERIES) if name not in self.hidden]
        name = shown[0] if shown else TOTAL
        label = SHORT_NAMES[name]
        value = self.history.latest.get(name)
        iteration = self.history.last_iteration
        at = baseline.value_at(name, iteration) if iteration is not None else None
        if value is None or iteration is None:
            detail = f"{label} -- (baseline to it {baseline.last_iter:,})"
        elif at is None:
            detail = f"{label} {_number(value)} (baseline has no {label} at or before it {iteration:,})"
        else:
            detail = f"{label} {_number(value)} (baseline {at[1]:.3f} at it {at[0]:,})"
        return Content.assemble(("╌ vs ", BASELINE_STYLE), (baseline.name, f"{BASELINE_STYLE} italic"), f": {detail}")

    def draw(self, width: int, height: int) -> Text:
        """The chart for a ``width`` x ``height`` canvas: y labels, braille curves (the
        baseline's faintly behind), AP50 markers on a right 0..1 axis, x labels."""
        if len(self.history) == 0:
            return Text(self.waiting_text, style="dim", justify="center")
        rows = height - 2  # the x axis and its labels below
        if rows < 2 or width < 24:
            return Text("(pane too small for the plot)", style="dim")
        names = [name for name in SERIES if name not in self.hidden]
        baseline_evals = self.baseline.evals if self.baseline is not None else []
        right = 4 if self.evals or baseline_evals else 0
        # Room for the y labels is only known once the ticks are; 8 columns fits "1.23e-05".
        columns = max(4, width - 9 - right)
        live = self._live_layers(columns, names)
        if not live:
            return Text("nothing to draw: every curve is hidden" + (" or <= 0 on a log scale" if self.log_scale else ""), style="dim")
        first_x, last_x = x_range(live)
        ghosts = self._ghost_layers(first_x, last_x, columns, names)
        val = self._val_layers(first_x, last_x, names)
        # The val points only widen the y range; they are drawn as markers, not curves.
        frame = fit_frame(first_x, last_x, ghosts + live + val, rows, width, right, self.log_scale)
        codes, owner = rasterise(frame, ghosts + live)
        markers = [_val_markers(frame, layer) for layer in val]
        markers += [Markers(_GHOST_AP_OWNER, "◇", baseline_evals), Markers(_AP_OWNER, "◆", self.evals)]
        glyphs = place_markers(frame, owner, markers)
        return render(frame, codes, owner, self._styles(), glyphs, Style(color=AP_COLOUR))

    def _live_layers(self, columns: int, names: list[str]) -> list[Layer]:
        view = self.history.view(columns, self.window, self.smoothing, names)
        layers = []
        for name in names:
            xs, ys = view.get(name, ([], []))
            layer = Layer.of(SERIES.index(name), xs, ys, self.log_scale)
            if layer.xs.size:
                layers.append(layer)
        return layers

    def _val_layers(self, first_x: float, last_x: float, names: list[str]) -> list[Layer]:
        """Each shown series' validation loss at the evaluations inside the x range."""
        if not self.show_val:
            return []
        layers = []
        for name in names:
            points = [(x, terms[name]) for x, terms in self.val_losses
                      if first_x <= x <= last_x and isinstance(terms.get(name), (int, float)) and math.isfinite(terms[name])]
            layer = Layer.of(_VAL + SERIES.index(name), [p[0] for p in points], [p[1] for p in points], self.log_scale)
            if layer.xs.size:
                layers.append(layer)
        return layers

    def _ghost_layers(self, first_x: float, last_x: float, columns: int, names: list[str]) -> list[Layer]:
        if self.baseline is None:
            return []
        view = self.baseline.view(first_x, last_x, columns, self.smoothing, names)
        layers = []
        for name, (xs, ys) in view.items():
            layer = Layer.of(_GHOST + SERIES.index(name), xs, ys, self.log_scale)
            if layer.xs.size:
                layers.append(layer)
        return layers

    @staticmethod
    def _styles() -> dict[int, Style]:
        styles: dict[int, Style] = {}
        for index, name in enumerate(SERIES):
            colour = None if PLOT_COLOURS[name] == "default" else PLOT_COLOURS[name]
            styles[index] = Style(color=colour)
            styles[_GHOST + index] = Style(color=colour, dim=True)
            styles[_VAL + index] = Style(color=colour, bold=True)
        styles[_AP_OWNER] = Style(color=AP_COLOUR)
        styles[_GHOST_AP_OWNER] = Style(color=AP_COLOUR, dim=True)
        return styles


def _val_markers(frame, layer: Layer) -> Markers:
    """A val-loss layer as × markers: their y as a 0..1 share of the frame (the markers' axis)."""
    span = (frame.high - frame.low) or 1.0
    points = [(float(x), (float(y) - frame.low) / span) for x, y in zip(layer.xs, layer.ys)]
    return Markers(layer.owner, "×", points)


def _number(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else str(value)
