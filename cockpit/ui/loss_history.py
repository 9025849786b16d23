"""The loss pane's view-model: every loss term over iterations, smoothed and decimated.

:class:`LossHistory` keeps each series raw and as an EMA for every factor in
:data:`SMOOTHING`, each in a :class:`~cockpit.ui.decimation.DecimatedSeries`, so however
long the run, a redraw reads at most one bucket per column.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Iterable

from cockpit.loss_names import SHORT_NAMES as _SHORT_NAMES
from cockpit.ui.decimation import DecimatedSeries, bucket_points, buckets_of

TERMS: tuple[str, ...] = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
"""The four Faster R-CNN loss terms, in the order torchvision returns them."""
TOTAL = "loss"
SERIES: tuple[str, ...] = TERMS + (TOTAL,)
SHORT_NAMES = _SHORT_NAMES
"""Short labels of the series (``cockpit.loss_names``: rpn_obj / rpn_box, never a bare rpn)."""

SMOOTHING: tuple[float, ...] = (0.0, 0.6, 0.9, 0.98)
"""EMA factors the plot cycles through; 0 = raw (min/max envelope)."""
WINDOWS: tuple[int, ...] = (0, 100, 500, 2000)
"""Plot windows in iterations; 0 = the whole run."""

def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class LossHistory:
    """Loss terms over iterations, smoothed and decimated for drawing.

    Every series is kept raw and as an EMA for each factor in :data:`SMOOTHING` (a few
    additions per step), so switching smoothing never rescans the history. The last
    ``recent`` records are kept point by point for the windowed views.
    """

    def __init__(self, capacity: int = 512, recent: int = 2048):
        self.capacity = capacity
        self._all: dict[tuple[str, float], DecimatedSeries] = {
            (name, alpha): DecimatedSeries(capacity) for name in SERIES for alpha in SMOOTHING
        }
        self._ema: dict[tuple[str, float], float] = {}
        # Point by point per series, for the windowed views: a window then reads one deque
        # per curve it draws instead of a dict lookup per record per curve.
        self._recent: dict[tuple[str, float], deque[tuple[int, float]]] = {key: deque(maxlen=recent) for key in self._all}
        self._last_iteration: int | None = None
        self.latest: dict[str, float] = {}
        self.nonfinite_iters: list[int] = []

    def __len__(self) -> int:
        return self._all[(TOTAL, 0.0)].count

    @property
    def last_iteration(self) -> int | None:
        """The iteration of the newest record (None before the first)."""
        return self._last_iteration

    def add(self, iteration: int, losses: dict[str, float], total: float) -> None:
        values = {name: losses.get(name) for name in TERMS}
        values[TOTAL] = total
        self.latest = {k: v for k, v in values.items() if v is not None}
        bad = False
        for name, value in values.items():
            if not _finite(value):
                bad = bad or value is not None
                continue
            for alpha in SMOOTHING:
                key = (name, alpha)
                if alpha == 0.0:
                    smoothed = float(value)
                else:
                    previous = self._ema.get(key)
                    smoothed = float(value) if previous is None else alpha * previous + (1 - alpha) * value
                    self._ema[key] = smoothed
                self._recent[key].append((iteration, smoothed))
                self._all[key].append(iteration, smoothed)
        if bad:
            self.nonfinite_iters.append(iteration)
            del self.nonfinite_iters[:-50]
        self._last_iteration = iteration

    def view(self, width: int, window: int = 0, smoothing: float = 0.0, names: Iterable[str] = SERIES) -> dict[str, tuple[list[float], list[float]]]:
        """Decimated points for each series: at most ``width`` buckets (2 points each when raw)."""
        width = max(2, width)
        envelope = smoothing == 0.0
        out: dict[str, tuple[list[float], list[float]]] = {}
        names = list(names)
        if window and self._last_iteration is not None:
            start = self._last_iteration - window
            for name in names:
                points = [point for point in self._recent[(name, smoothing)] if point[0] > start]
                xs = [x for x, _ in points]
                ys = [y for _, y in points]
                out[name] = bucket_points(buckets_of(xs, ys, width), envelope)
            return out
        for name in names:
            out[name] = bucket_points(self._all[(name, smoothing)].buckets(width), envelope)
        return out
