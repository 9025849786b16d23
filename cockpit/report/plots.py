"""The report's plots as PNG bytes, drawn with matplotlib's Agg backend.

matplotlib is imported inside the functions: ``cockpit --help`` and every import of
``cockpit.report`` must stay fast. The object-oriented API (``Figure`` +
``FigureCanvasAgg``) is used instead of ``pyplot``: it touches no global figure
manager or GUI backend, so a report can be built from a worker thread of the TUI.

Plot cost does not grow with run length: a 100,000-iteration history is bucketed down
to one point per pixel column of its panel (at most ``MAX_POINTS``), keeping each
bucket's min/max as a shaded envelope so that spikes stay visible. Smoothing (EMA) is computed on the full series
first, then decimated.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from cockpit.report.rundir import LOSS_KEYS, MEMORY_KEYS, RunDir, finite

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

MAX_POINTS = 2000
"""Points per plotted series at most."""

_LOSS_TITLES = {
    "loss": "total loss",
    "loss_classifier": "loss_classifier (ROI head class)",
    "loss_box_reg": "loss_box_reg (ROI head box)",
    "loss_objectness": "loss_objectness (RPN)",
    "loss_rpn_box_reg": "loss_rpn_box_reg (RPN box)",
}
_COLORS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#7f8c8d")


@dataclass(frozen=True)
class Decimated:
    """A series reduced to buckets: mean per bucket, and the bucket's min and max."""

    x: "np.ndarray"
    y: "np.ndarray"
    lo: "np.ndarray"
    hi: "np.ndarray"


def decimate(x: Sequence[float], y: Sequence[float], max_points: int = MAX_POINTS) -> Decimated:
    """Bucket ``(x, y)`` into at most ``max_points`` points; non-finite ``y`` are dropped.

    Each bucket keeps the mean (the line), the min and the max (the envelope), so a
    single spike among 100,000 points is still drawn.
    """
    import numpy as np

    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    keep = np.isfinite(ys) & np.isfinite(xs)
    xs, ys = xs[keep], ys[keep]
    n = len(ys)
    if n <= max_points:
        return Decimated(xs, ys, ys, ys)
    # Bucket boundaries in index space: equal counts per bucket keeps this O(n).
    starts = (np.arange(max_points) * n) // max_points
    counts = np.diff(np.append(starts, n))
    x_mean = np.add.reduceat(xs, starts) / counts
    y_mean = np.add.reduceat(ys, starts) / counts
    return Decimated(x_mean, y_mean, np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts))


def ema(values: Sequence[float], span: float) -> list[float]:
    """Bias-corrected exponential moving average; non-finite values are skipped (held)."""
    return ema_array(values, span).tolist()


def ema_array(values: Sequence[float] | "np.ndarray", span: float) -> "np.ndarray":
    """:func:`ema` as a float array.

    The recurrence acc = beta*acc + alpha*v (and its weight, the same over ones) runs in
    blocks with numpy: inside a block, acc_j = beta^(j+1)*carry + alpha*beta^j*cumsum(v_i*beta^-i).
    The block is as long as beta^-i stays far from overflowing, so the cumulative sums stay
    exact to rounding; a Python-level recurrence over 100,000 records x 5 series took ~0.6 s.
    Values are taken relative to the first one, so a flat series stays exactly flat.
    """
    import numpy as np

    alpha = 2.0 / (span + 1.0)
    beta = 1.0 - alpha
    ys = np.asarray(values, dtype=float)
    finite = np.isfinite(ys)
    kept = ys[finite]
    out = np.full(len(kept) + 1, np.nan)  # index 0: no finite value seen yet
    if len(kept):
        base = kept[0]
        acc = _recurrence(kept - base, alpha, beta)
        weight = _recurrence(np.ones_like(kept), alpha, beta)
        out[1:] = base + acc / weight
    # Position i holds the output after the finite values up to i.
    return out[np.cumsum(finite)]


def _recurrence(values: "np.ndarray", alpha: float, beta: float) -> "np.ndarray":
    """acc_t = beta * acc_(t-1) + alpha * v_t from acc = 0, in numpy blocks (see :func:`ema_array`)."""
    import numpy as np

    if not 0.0 < beta < 1.0:  # a span of 1 or less: no decay to divide by; rare, so plainly
        import itertools

        step = itertools.accumulate(values.tolist(), lambda a, v: beta * a + alpha * v, initial=0.0)
        return np.fromiter(step, float, len(values) + 1)[1:]
    block = max(1, min(len(values), int(200.0 / -math.log(beta))))
    powers = beta ** np.arange(block, dtype=float)  # beta^j, down to ~e^-200: no underflow to 0
    out = np.empty_like(values)
    carry = 0.0
    for start in range(0, len(values), block):
        chunk = values[start : start + block]
        size = len(chunk)
        scale = powers[:size]
        out[start : start + size] = beta * scale * carry + alpha * scale * np.cumsum(chunk / scale)
        carry = float(out[start + size - 1])
    return out


def smoothing_span(n: int) -> float:
    """EMA span in records: about 2% of the history, between 5 and 500 records."""
    return float(min(500, max(5, n // 50)))


def _new_figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    axes = figure.subplots(rows, cols, squeeze=False)
    # Fixed margins instead of constrained layout: that solver re-draws the figure to
    # measure it and cost more than the drawing itself.
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.11 if rows == 1 else 0.06,
                           top=0.9 if rows == 1 else 0.95, wspace=0.18, hspace=0.45)
    return figure, axes


def _style(ax: Any, title: str, xlabel: str = "iteration", ylabel: str = "") -> None:
    # y given: matplotlib otherwise measures every tick label to place the title clear of
    # top ticks, which these axes do not have (same picture, ~0.1 s less for the losses).
    ax.set_title(title, fontsize=10, loc="left", y=1.0)
    ax.set_xlabel(xlabel, fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def to_png(figure: Any) -> bytes:
    """The figure as PNG bytes (no 'Software' tag, so identical input gives identical bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None}, facecolor="white")
    return buffer.getvalue()


def plot_width(ax: Any) -> int:
    """Buckets to decimate to for ``ax``: one per pixel column of the plotting area (at most
    :data:`MAX_POINTS`). More points than pixels draw the same picture, slower: Agg pays
    for every vertex, and a min/max envelope per column keeps every spike."""
    return max(2, min(MAX_POINTS, int(ax.get_window_extent().width)))


def _draw_series(ax: Any, xs: "np.ndarray", ys: "np.ndarray", smooth_ys: "np.ndarray", color: str, label: str) -> None:
    """Raw series as a light line with its min/max envelope, and its EMA as a dark line."""
    import numpy as np

    width = plot_width(ax)
    raw = decimate(xs, ys, width)
    if len(raw.x) == 0:
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes, color="#888")
        return
    if raw.lo is not raw.y:
        ax.fill_between(raw.x, raw.lo, raw.hi, color=color, alpha=0.15, linewidth=0, label="min/max")
    ax.plot(raw.x, raw.y, color=color, alpha=0.35, linewidth=0.8, label="raw")
    smooth = decimate(xs, smooth_ys, width)
    ax.plot(smooth.x, smooth.y, color=color, linewidth=1.6, label=f"EMA ({int(smoothing_span(len(ys)))} records)")
    values = np.asarray(ys, dtype=float)
    bad = np.asarray(xs, dtype=float)[~np.isfinite(values)]
    if len(bad):
        # A NaN/Inf loss is exactly what the reader is looking for: mark where.
        marks = np.unique(bad)[:: max(1, len(bad) // 100)]
        top = float(np.nanmax(raw.hi))
        ax.plot(marks, [top] * len(marks), "x", color="#e74c3c", markersize=5, label=f"NaN/Inf ({len(bad)})")
    finite_hi = raw.hi[np.isfinite(raw.hi)]
    if len(finite_hi) and float(np.min(raw.lo)) > 0:
        median = float(np.median(raw.y))
        if median > 0 and float(np.max(finite_hi)) / median > 50:
            ax.set_yscale("log")  # one divergence spike would flatten everything else
    ax.set_ylabel(label, fontsize=8)


def val_loss_points(run: RunDir, key: str) -> tuple[list[float], list[float]]:
    """(iterations, validation ``key``) over the evaluation records that carry a val loss."""
    xs: list[float] = []
    ys: list[float] = []
    for record in run.evals:
        value = finite((record.get("val_loss") or {}).get(key))
        it = finite(record.get("iter"))
        if value is not None and it is not None:
            xs.append(it)
            ys.append(value)
    return xs, ys


def draw_val_loss(ax: Any, run: RunDir, key: str) -> None:
    """Mark the validation loss of ``key`` on a loss panel (dashed, square markers)."""
    xs, ys = val_loss_points(run, key)
    if xs:
        ax.plot(xs, ys, linestyle="--", marker="s", markersize=4, color="#333333", linewidth=1, label="val")


def loss_plot(run: RunDir) -> bytes | None:
    """Each loss term and the total over iterations (raw + EMA), one panel each."""
    series = {key: run.column(key) for key in LOSS_KEYS}
    series = {key: value for key, value in series.items() if len(value[0])}
    if not series:
        return None
    smoothed = {key: ema_array(ys, smoothing_span(len(ys))) for key, (_xs, ys) in series.items()}
    figure, axes = _new_figure(11, 8.4, 3, 2)
    panels = axes.flatten()
    for index, key in enumerate(LOSS_KEYS):
        ax = panels[index]
        _style(ax, _LOSS_TITLES[key])
        if key not in series:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="#888")
            continue
        xs, ys = series[key]
        _draw_series(ax, xs, ys, smoothed[key], _COLORS[index], key)
        draw_val_loss(ax, run, key)
        if index == 0:
            ax.legend(fontsize=7, loc="upper right")
    # Last panel: the smoothed terms together, to see which one dominates.
    ax = panels[5]
    _style(ax, "all terms (EMA)")
    for index, key in enumerate(LOSS_KEYS[1:], start=1):
        if key in series:
            smooth = decimate(series[key][0], smoothed[key], plot_width(ax))
            ax.plot(smooth.x, smooth.y, color=_COLORS[index], linewidth=1.4, label=key)
    if ax.lines:
        ax.legend(fontsize=7, loc="upper right")
    return to_png(figure)


def lr_plot(run: RunDir) -> bytes | None:
    """LR over iterations; changes made by the user (and by recovery) are marked."""
    import numpy as np

    xs, ys = run.column("lr")
    lr_events = run.events_of("lr")
    if not len(xs):
        # No training records: rebuild the curve from the LR events.
        points = [(finite(e.get("iter")), finite(e.get("lr"))) for e in lr_events]
        points = [(it, lr) for it, lr in points if it is not None and lr is not None]
        xs, ys = np.array([p[0] for p in points], dtype=float), np.array([p[1] for p in points], dtype=float)
    if not len(xs):
        return None
    figure, axes = _new_figure(11, 3.4)
    ax = axes[0][0]
    _style(ax, "learning rate", ylabel="lr")
    line = decimate(xs, ys, plot_width(ax))
    ax.step(line.x, line.hi, where="post", color=_COLORS[0], linewidth=1.4, label="lr")
    positive = ys[ys > 0]
    if len(positive) and positive.max() / positive.min() > 20:
        ax.set_yscale("log")
    marked = {"user": "#e67e22", "recovery": "#c0392b"}
    labelled: set[str] = set()
    user_events = [e for e in lr_events if e.get("source") in marked]
    marks: list[tuple[float, float, str]] = []
    for event in user_events[:60]:  # a few dozen marks are readable; more are noise
        it, lr = finite(event.get("iter")), finite(event.get("lr"))
        if it is None:
            continue
        source = str(event.get("source"))
        label = f"set by {source}" if source not in labelled else None
        labelled.add(source)
        ax.axvline(it, color=marked[source], linestyle="--", linewidth=1, label=label)
        if lr is not None:
            marks.append((it, lr, marked[source]))
    label_lr_changes(ax, marks)
    ax.legend(fontsize=7, loc="upper right")
    return to_png(figure)


LABEL_LEVELS = 4
"""How many rows of LR labels may stack above a change before a label is left out."""


def label_lr_changes(ax: Any, marks: Sequence[tuple[float, float, str]]) -> list[Any]:
    """Write each LR change's new value beside its mark, never over another label.

    A label that would overlap one already placed moves up a row (up to ``LABEL_LEVELS``);
    with no free row it is left out -- its dashed line still marks the change. Returns
    the labels placed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = ax.figure
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    renderer = figure.canvas.get_renderer()
    ax.autoscale_view()  # the labels' positions depend on the final axis limits
    frame = figure.bbox
    placed: list[tuple[Any, Any]] = []
    for it, lr, colour in marks:
        for level in range(LABEL_LEVELS):
            text = ax.annotate(f"{lr:.3g}", (it, lr), textcoords="offset points", xytext=(3, 4 + 10 * level),
                               fontsize=7, color=colour)
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for _, other in placed):
                placed.append((text, box))
                break
            text.remove()
    return [text for text, _ in placed]


def memory_plot(run: RunDir) -> bytes | None:
    """Memory over iterations: CUDA allocated / reserved / peak, and process RSS."""
    series = {key: run.column(key) for key in MEMORY_KEYS}
    series = {key: value for key, value in series.items() if len(value[0])}
    if not series:
        return None
    figure, axes = _new_figure(11, 3.4)
    ax = axes[0][0]
    _style(ax, "memory", ylabel="MB")
    for index, (key, (xs, ys)) in enumerate(series.items()):
        line = decimate(xs, ys, plot_width(ax))
        color = _COLORS[index % len(_COLORS)]
        # The max of a bucket is what matters for memory (the peak that OOMs).
        ax.plot(line.x, line.hi, color=color, linewidth=1.3, label=key)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="lower right")
    return to_png(figure)


def ap_plot(run: RunDir) -> bytes | None:
    """AP, AP50 and AP75 over evaluations; the best AP is starred."""
    points: dict[str, tuple[list[float], list[float]]] = {key: ([], []) for key in ("AP", "AP50", "AP75")}
    for record in run.evals:
        it = finite(record.get("iter"))
        if it is None:
            continue
        for key, (xs, ys) in points.items():
            value = finite(record["eval"].get(key))
            if value is not None and value >= 0:  # -1: undefined in COCO
                xs.append(it)
                ys.append(value)
    if not any(xs for xs, _ in points.values()):
        return None
    figure, axes = _new_figure(11, 3.4)
    ax = axes[0][0]
    _style(ax, "evaluation (COCO bbox)", ylabel="fraction")
    for index, (key, (xs, ys)) in enumerate(points.items()):
        if xs:
            ax.plot(xs, ys, marker="o", markersize=4, color=_COLORS[index], linewidth=1.4, label=key)
    xs, ys = points["AP"]
    if xs:
        best = max(range(len(ys)), key=lambda i: ys[i])
        ax.plot([xs[best]], [ys[best]], marker="*", markersize=14, color="#f1c40f", markeredgecolor="#333",
                linestyle="none", label=f"best AP {ys[best]:.3f}")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    return to_png(figure)


def preflight_plot(preflight: dict[str, Any] | None) -> bytes | None:
    """Class and box-size histograms of the pre-flight scan, one bar group per split."""
    if not preflight:
        return None
    splits = {name: data for name, data in (preflight.get("splits") or {}).items() if isinstance(data, dict)}
    if not splits:
        return None
    figure, axes = _new_figure(11, 3.4, 1, 2)
    drew = False
    for ax, key, title in (
        (axes[0][0], "class_histogram", "objects per class"),
        (axes[0][1], "box_size_histogram", "objects per box size"),
    ):
        _style(ax, title, xlabel="", ylabel="objects")
        bins: list[str] = []
        for data in splits.values():
            for name in (data.get(key) or {}):
                if str(name) not in bins:
                    bins.append(str(name))
        if not bins:
            ax.text(0.5, 0.5, "not in preflight.json", ha="center", va="center", transform=ax.transAxes, color="#888")
            continue
        width = 0.8 / max(1, len(splits))
        for index, (split, data) in enumerate(splits.items()):
            hist = {str(k): finite(v) or 0 for k, v in (data.get(key) or {}).items()}
            positions = [i + index * width - 0.4 + width / 2 for i in range(len(bins))]
            ax.bar(positions, [hist.get(b, 0) for b in bins], width=width, color=_COLORS[index % len(_COLORS)], label=split)
        ax.set_xticks(range(len(bins)))
        ax.set_xticklabels(bins, rotation=30 if len(bins) > 4 else 0, ha="right" if len(bins) > 4 else "center")
        ax.legend(fontsize=7)
        drew = True
    return to_png(figure) if drew else None

