"""The comparison's plots: one axis per metric, every run overlaid in its own colour.

Same rules as the run report's plots (:mod:`cockpit.report.plots`): matplotlib's
object-oriented API (no pyplot, safe off the main thread), imported inside the
functions, and every series decimated to a bounded number of points so a long run costs
what a short one does. Training series are drawn raw (faint) with an EMA over them;
evaluation series (AP50, validation loss) as markers joined by lines.
"""

from __future__ import annotations

import math
from typing import Any

from cockpit.report.compare_analysis import Curve
from cockpit.report.plots import _new_figure, _style, decimate, ema, smoothing_span, to_png

RUN_COLOURS = ("#1f5fa8", "#d35400", "#2e8b57", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b7950b", "#2c3e50", "#e84393")
"""One colour per run, in the order the runs were given (cycled past ten)."""
COLOUR_NAMES = ("blue", "orange", "green", "purple", "red", "teal", "grey", "olive", "navy", "pink")
"""What the runs table calls each of :data:`RUN_COLOURS`."""

GROUP_TITLES = {
    "losses": "Loss terms and total",
    "evaluation": "Evaluation (AP) and validation loss",
    "assignment": "Label assignment",
    "other": "Other training signals",
}


def colour_of(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def colour_name(index: int) -> str:
    return COLOUR_NAMES[index % len(COLOUR_NAMES)]


STEPPED = frozenset({"lr"})
"""Series set by a schedule or a person: drawn as steps, never smoothed (an EMA would lag the change)."""


def _draw_stepped(ax: Any, xs: list[float], ys: list[float], colour: str) -> None:
    line = decimate(xs, ys)
    ax.step(line.x, line.hi, where="post", color=colour, linewidth=1.5)


def _draw_train(ax: Any, xs: list[float], ys: list[float], colour: str) -> None:
    raw = decimate(xs, ys)
    if len(raw.x) == 0:
        return
    ax.plot(raw.x, raw.y, color=colour, alpha=0.25, linewidth=0.7)
    if len(ys) > 5:
        smooth = decimate(xs, ema(ys, smoothing_span(len(ys))))
        ax.plot(smooth.x, smooth.y, color=colour, linewidth=1.6)


def _draw_eval(ax: Any, xs: list[float], ys: list[float], colour: str) -> None:
    ax.plot(xs, ys, color=colour, marker="o", markersize=3.5, linewidth=1.3)


def _maybe_log(ax: Any, curve: Curve) -> None:
    """Log scale when one run's values span orders of magnitude (a divergence, an LR sweep)."""
    values = [y for _, ys in curve.series.values() for y in ys if isinstance(y, float) and math.isfinite(y)]
    positive = [v for v in values if v > 0]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > 100:
        ax.set_yscale("log")


def group_figure(group: str, curves: list[Curve], labels: list[str]) -> bytes | None:
    """One PNG: an axis per metric of ``group`` (two columns), a shared legend of the runs."""
    curves = [curve for curve in curves if curve.group == group and curve.series]
    if not curves:
        return None
    cols = 2 if len(curves) > 1 else 1
    rows = -(-len(curves) // cols)
    figure, axes = _new_figure(11, 0.6 + 2.9 * rows, rows, cols)
    figure.subplots_adjust(top=1 - 0.55 / (0.6 + 2.9 * rows), bottom=0.35 / (0.6 + 2.9 * rows))
    panels = axes.flatten()
    for ax, curve in zip(panels, curves):
        _style(ax, curve.key)
        for index, label in enumerate(labels):
            if label not in curve.series:
                continue
            xs, ys = curve.series[label]
            draw = _draw_eval if group == "evaluation" else _draw_stepped if curve.key in STEPPED else _draw_train
            draw(ax, xs, ys, colour_of(index))
        if group == "evaluation" and curve.key.startswith("AP"):
            ax.set_ylim(0, 1)
        else:
            _maybe_log(ax, curve)
    for ax in panels[len(curves):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([0], [0], color=colour_of(i), linewidth=2) for i in range(len(labels))]
    figure.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    return to_png(figure)
