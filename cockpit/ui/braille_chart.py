"""A line chart in braille dots (2 x 4 per cell), drawn with numpy into a Rich ``Text``.

Each curve becomes the band of dots its line crosses in every dot column, so the cost is
O(pane area) and a chart takes a few milliseconds. (plotext drew the same picture in
30-50 ms on a 2-core CPU, most of it interpolating line segments point by point; see
BENCHMARKS.md.)

The pieces, in the order a chart is made: :func:`x_range` of the curves that set the
iteration axis, :func:`fit_frame` (value range, ticks, label width), :func:`rasterise`
the layers (later layers own a shared cell), then :func:`render` with markers on a right
0..1 axis (AP50). Owners are small ints: each layer's own, :data:`EMPTY` for none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rich.style import Style
from rich.text import Span, Text

EMPTY = -1
"""Owner of a cell no layer reaches."""

# Braille dot bits by (row within the cell, column within the cell): U+2800 + the sum.
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)
_CELL_WEIGHTS = _DOT_BITS.reshape(8).astype(np.uint16)
_CELL_CHARS = [" "] + [chr(0x2800 + code) for code in range(1, 256)]
_AXIS_STYLE = Style(dim=True)


@dataclass(frozen=True)
class Layer:
    """One curve: its owner id (its colour) and its points, x ascending."""

    owner: int
    xs: np.ndarray
    ys: np.ndarray

    @classmethod
    def of(cls, owner: int, xs: Sequence[float], ys: Sequence[float], log: bool = False) -> "Layer":
        x = np.asarray(xs, dtype=np.float64)
        y = np.asarray(ys, dtype=np.float64)
        if log:
            keep = y > 0
            x, y = x[keep], np.log10(y[keep])
        return cls(owner, x, y)


@dataclass(frozen=True)
class Markers:
    """Glyphs at (x, y) with y on the right 0..1 axis, e.g. AP50 at each evaluation."""

    owner: int
    glyph: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Frame:
    """Where the data goes: ranges, the plot's cells and the y-axis ticks."""

    first_x: float
    last_x: float
    low: float
    high: float
    rows: int
    columns: int
    label_width: int
    ticks: tuple[tuple[float, str], ...]
    right: int
    """Columns of the right-hand 0..1 axis (0: none)."""

    @property
    def dots_x(self) -> int:
        return self.columns * 2

    @property
    def dots_y(self) -> int:
        return self.rows * 4

    def x_dots(self, xs: np.ndarray | float):
        return (xs - self.first_x) / (self.last_x - self.first_x) * (self.dots_x - 1)

    def y_dots(self, ys: np.ndarray | float):
        return (ys - self.low) / (self.high - self.low) * (self.dots_y - 1)


def x_range(layers: Sequence[Layer]) -> tuple[float, float]:
    """The iterations the chart spans (never empty)."""
    first = min(float(layer.xs[0]) for layer in layers)
    last = max(float(layer.xs[-1]) for layer in layers)
    return first, last if last > first else first + 1


def fit_frame(first_x: float, last_x: float, layers: Sequence[Layer], rows: int, width: int, right: int, log: bool) -> Frame:
    """The frame that shows every point of ``layers`` (already clipped to the x range)."""
    values = [layer.ys for layer in layers if layer.ys.size]
    low = min(float(v.min()) for v in values)
    high = max(float(v.max()) for v in values)
    if high - low < 1e-12:
        pad = abs(high) * 0.05 or 0.5
        low, high = low - pad, high + pad
    if log:
        positions = log_ticks(low, high)
        labels = [f"{10 ** t:.3g}" for t in positions]
    else:
        positions = linear_ticks(low, high, max(2, rows // 3))
        labels = [f"{t:.3g}" for t in positions]
    label_width = max(len(label) for label in labels)
    columns = max(4, width - label_width - 1 - right)
    return Frame(first_x, last_x, low, high, rows, columns, label_width, tuple(zip(positions, labels)), right)


def rasterise(frame: Frame, layers: Sequence[Layer]) -> tuple[np.ndarray, np.ndarray]:
    """(braille codes, owner) per cell; a later layer owns the cells it shares."""
    codes = np.zeros((frame.rows, frame.columns), dtype=np.int64)
    owner = np.full((frame.rows, frame.columns), EMPTY, dtype=np.int64)
    for layer in layers:
        if layer.xs.size == 0:
            continue
        cells = braille_cells(band(frame.x_dots(layer.xs), frame.y_dots(layer.ys), frame.dots_x), frame.dots_y)
        codes |= cells
        owner[cells > 0] = layer.owner
    return codes, owner


def place_markers(frame: Frame, owner: np.ndarray, markers: Sequence[Markers]) -> dict[int, str]:
    """Put each marker in its cell (on top of any curve); returns owner -> glyph."""
    glyphs = {}
    for group in markers:
        glyphs[group.owner] = group.glyph
        for x, y in group.points:
            if frame.first_x <= x <= frame.last_x and math.isfinite(y):
                column = int(frame.x_dots(x)) // 2
                row = frame.rows - 1 - int(min(1.0, max(0.0, y)) * (frame.dots_y - 1)) // 4
                owner[row, column] = group.owner
    return glyphs


def render(frame: Frame, codes: np.ndarray, owner: np.ndarray, styles: dict[int, Style],
           glyphs: dict[int, str], right_style: Style) -> Text:
    """The chart as one Text: y labels, the cells, the right axis, then the x axis."""
    parts, spans = _plot_rows(frame, codes, owner, styles, glyphs, right_style)
    offset = sum(len(part) for part in parts)
    axis_line, label_line = _x_axis(frame)
    spans.append(Span(offset, offset + len(axis_line) + len(label_line), _AXIS_STYLE))
    parts += [axis_line, label_line]
    text = Text("".join(parts), no_wrap=True, overflow="crop")
    text.spans = spans
    return text


def _plot_rows(frame: Frame, codes: np.ndarray, owner: np.ndarray, styles: dict[int, Style],
               glyphs: dict[int, str], right_style: Style) -> tuple[list[str], list[Span]]:
    rows, columns, right = frame.rows, frame.columns, frame.right
    tick_rows: dict[int, str] = {}
    for tick, label in frame.ticks:
        row = rows - 1 - int(round(frame.y_dots(tick))) // 4
        if 0 <= row < rows:
            tick_rows.setdefault(row, label)
    right_rows = {rows - 1: "0", rows - 1 - (frame.dots_y - 1) // 8: ".5", 0: "1"} if right else {}
    # One plain string and a list of spans: far cheaper than a Text.append per run.
    parts: list[str] = []
    spans: list[Span] = []
    offset = 0
    for row in range(rows):
        label = tick_rows.get(row)
        prefix = (label or "").rjust(frame.label_width) + ("┤" if label else "│")
        spans.append(Span(offset, offset + len(prefix), _AXIS_STYLE))
        offset += len(prefix)
        owner_row = owner[row]
        chars = [_CELL_CHARS[code] for code in codes[row].tolist()]
        for who, glyph in glyphs.items():
            for column in np.flatnonzero(owner_row == who).tolist():
                chars[column] = glyph
        # Runs of one owner: boundaries where the owner changes.
        edges = [0, *(np.flatnonzero(np.diff(owner_row)) + 1).tolist(), columns]
        for start, end in zip(edges, edges[1:]):
            who = int(owner_row[start])
            if who != EMPTY:
                spans.append(Span(offset + start, offset + end, styles[who]))
        parts.append(prefix + "".join(chars))
        offset += columns
        if right:
            tail = " " + right_rows.get(row, "").ljust(right - 1)
            spans.append(Span(offset, offset + len(tail), right_style))
            parts.append(tail)
            offset += len(tail)
        parts.append("\n")
        offset += 1
    return parts, spans


def _x_axis(frame: Frame) -> tuple[str, str]:
    columns = frame.columns
    axis = ["─"] * columns
    labels = [" "] * (columns + frame.right + 8)
    free_from = 0
    for tick in int_ticks(frame.first_x, frame.last_x, max(2, columns // 16)):
        column = int(round(frame.x_dots(tick))) // 2
        if not 0 <= column < columns:
            continue
        axis[column] = "┬"
        label = str(tick)
        # Centred under its tick, but never cut at the right edge: "100" cut to "10" would
        # name another iteration.
        start = max(0, min(column - len(label) // 2, columns + frame.right - len(label)))
        if start >= free_from:
            labels[start : start + len(label)] = list(label)
            free_from = start + len(label) + 1
    axis_line = " " * frame.label_width + "└" + "".join(axis) + "\n"
    label_line = " " * (frame.label_width + 1) + "".join(labels[: columns + frame.right]).rstrip()
    return axis_line, label_line


def band(px: np.ndarray, py: np.ndarray, dots_x: int) -> tuple[np.ndarray, np.ndarray]:
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


def braille_cells(band: tuple[np.ndarray, np.ndarray], dots_y: int) -> np.ndarray:
    """(rows, columns) braille codes (0: empty cell) of the dots between ``lo`` and ``hi``."""
    lo, hi = band
    dots_x = lo.size
    valid = ~np.isnan(lo)
    lo_dot = np.where(valid, np.clip(np.round(np.nan_to_num(lo)), 0, dots_y - 1), 1)
    hi_dot = np.where(valid, np.clip(np.round(np.nan_to_num(hi)), 0, dots_y - 1), 0)
    # Dot rows counted from the top, as the cells are printed.
    height = np.arange(dots_y - 1, -1, -1, dtype=np.float64)[:, None]
    lit = (height >= lo_dot[None, :]) & (height <= hi_dot[None, :])
    # Each cell's 4 x 2 dots as 8 flags, times their bit values: one small integer matmul
    # (half the time of the equivalent einsum, and this runs once per curve per redraw).
    block = lit.reshape(dots_y // 4, 4, dots_x // 2, 2).transpose(0, 2, 1, 3).reshape(dots_y // 4, dots_x // 2, 8)
    return block.astype(np.uint16) @ _CELL_WEIGHTS


def linear_ticks(low: float, high: float, count: int) -> list[float]:
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


def log_ticks(low: float, high: float) -> list[float]:
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


def int_ticks(low: float, high: float, count: int) -> list[int]:
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
