"""The losses pane: the four Faster R-CNN terms and their total over iterations, AP50 beside.

The widget only draws. It reads a :class:`~cockpit.ui.state.LossHistory` (owned by the
app's view-model) through ``view(width, ...)``, which hands back at most one bucket per
column, so a redraw costs the same at iteration 100 and at iteration 1,000,000.
"""

from __future__ import annotations

import math
import time

from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from cockpit.ui.state import SERIES, SHORT_NAMES, SMOOTHING, WINDOWS, LossHistory

# One key and one colour per series. Plotext colours are the 16 ANSI ones (and "default",
# the terminal's own foreground), which every terminal maps to something readable on its
# own background; the legend uses the same ANSI names.
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
AP_COLOUR, AP_STYLE = "orange", "ansi_yellow"


class _Chart(PlotextPlot):
    """The plotext canvas; everything it draws comes from its parent's settings.

    Building a plotext figure costs tens of milliseconds, so the result is kept until the
    data, the settings, the size or the theme change (a focus change or a notification
    repaints the pane without rebuilding it).
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
            self._owner.draw(self.plt, self.size.width, self.size.height)
            rendered = super().render()
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
        parts: list[Content] = []
        latest = self.history.latest
        for name in SERIES:
            key = SERIES_KEYS[name]
            value = latest.get(name)
            number = "--" if value is None else f"{value:.3f}" if math.isfinite(value) else str(value)
            if name in self.hidden:
                parts.append(Content.styled(f"{key} ○ {SHORT_NAMES[name]}", "$text-muted strike"))
            else:
                parts.append(
                    Content.assemble((f"{key} ", "$text-muted"), ("● " + SHORT_NAMES[name], LEGEND_STYLES[name]), f" {number}")
                )
        extras: list[Content] = []
        if self.evals:
            extras.append(Content.assemble(("◆ AP50", AP_STYLE), f" {self.evals[-1][1]:.3f} (it {self.evals[-1][0]})"))
        extras.append(Content.styled(
            f"g {'log' if self.log_scale else 'linear'}  "
            f"m {f'ema {self.smoothing:g}' if self.smoothing else 'raw'}  "
            f"w {f'last {self.window} it' if self.window else 'all'}",
            "$text-muted",
        ))
        return Content("\n").join([Content("  ").join(parts), Content("  ").join(extras)])

    def draw(self, plt, width: int, height: int) -> None:
        """Rebuild the plotext figure for a ``width`` x ``height`` canvas."""
        # Start from a blank figure; PlotextPlot.render re-applies size and theme after this.
        plt.clear_figure()
        names = [name for name in SERIES if name not in self.hidden]
        if len(self.history) == 0:
            plt.title("waiting for the first training step…")
            plt.xticks([])
            plt.yticks([])
            return
        # Leave room for the y-axis labels; one bucket per remaining column.
        columns = max(8, width - 12)
        view = self.history.view(columns, self.window, self.smoothing, names)
        lowest = first_x = math.inf
        highest = last_x = -math.inf
        for name in names:
            xs, ys = view.get(name, ([], []))
            if self.log_scale:
                keep = [(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]
                xs, ys = [p[0] for p in keep], [p[1] for p in keep]
            if not xs:
                continue
            lowest, highest = min(lowest, min(ys)), max(highest, max(ys))
            first_x, last_x = min(first_x, xs[0]), max(last_x, xs[-1])
            plt.plot(xs, ys, color=PLOT_COLOURS[name], marker="braille")
        if math.isfinite(first_x):
            # Iterations are whole numbers: tick them as such (plotext would print 28.5).
            ticks = _int_ticks(first_x, last_x, max(2, columns // 16))
            plt.xticks(ticks, [str(t) for t in ticks])
        if self.log_scale and math.isfinite(lowest):
            ticks = _log_ticks(lowest, highest)
            plt.yticks(ticks, [f"{10 ** t:.3g}" for t in ticks])
        evals = self.evals
        if self.window and math.isfinite(first_x):
            evals = [(x, y) for x, y in evals if x >= first_x]
        if evals:
            # AP50 on its own axis, on a fixed 0..1 scale so progress reads at a glance.
            plt.scatter([x for x, _ in evals], [y for _, y in evals], color=AP_COLOUR, marker="◆", yside="right")
            plt.ylim(0, 1, yside="right")


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
