"""The cockpit's view-model: what the panes show, folded from engine events.

Pure Python (no Textual): :meth:`CockpitState.apply` takes one engine event and returns
the names of the panes it changed. The widgets only draw what this holds.

Two rules keep the UI cheap however long the run is:

- Loss curves live in :class:`DecimatedSeries` -- at most ``capacity`` buckets that keep
  each stretch's min and max, merged pairwise when full -- so appending is O(1) amortised
  and drawing costs O(plot width), never O(iterations). A one-step spike survives every
  merge because the bucket keeps its max.
- Times come from the events (``Event.time``), never from the wall clock, so it/s and ETA
  are the same every time a recorded or scripted stream is replayed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from cockpit.diagnostics.checklist import Checklist, ChecklistRow
from cockpit.loss_names import SHORT_NAMES as _SHORT_NAMES
from cockpit.engine.events import (
    CheckpointSaved,
    CommandAck,
    EvalResult,
    Event,
    FlagRaised,
    LRChanged,
    PreviewReady,
    RunError,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    StateChanged,
    StepMetrics,
)

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

# Pane names used by apply() / the app to know what to redraw.
STATUS, LOSSES, MEMORY, CHECKLIST, PREVIEW, CONFIG = "status", "losses", "memory", "checklist", "preview", "config"


@dataclass
class Bucket:
    """A stretch of consecutive points reduced to its extremes and its last value."""

    x0: float
    x1: float
    lo: float
    lo_x: float
    hi: float
    hi_x: float
    last: float
    n: int = 1

    @classmethod
    def point(cls, x: float, y: float) -> "Bucket":
        return cls(x, x, y, x, y, x, y, 1)

    def absorb(self, other: "Bucket") -> None:
        """Merge a later bucket into this one."""
        self.x1 = other.x1
        if other.lo < self.lo:
            self.lo, self.lo_x = other.lo, other.lo_x
        if other.hi > self.hi:
            self.hi, self.hi_x = other.hi, other.hi_x
        self.last = other.last
        self.n += other.n

    def copy(self) -> "Bucket":
        return Bucket(self.x0, self.x1, self.lo, self.lo_x, self.hi, self.hi_x, self.last, self.n)


def reduce_buckets(buckets: list[Bucket], max_buckets: int) -> list[Bucket]:
    """Merge neighbours until at most ``max_buckets`` remain (O(len(buckets)))."""
    max_buckets = max(1, max_buckets)
    if len(buckets) <= max_buckets:
        return buckets
    group = math.ceil(len(buckets) / max_buckets)
    merged: list[Bucket] = []
    # Built-in min/max over each group rather than absorb() pair by pair: this runs on
    # every redraw. Both keep the earliest extreme on ties, as absorb does.
    for start in range(0, len(buckets), group):
        chunk = buckets[start : start + group]
        first, last = chunk[0], chunk[-1]
        low = min(chunk, key=_lo)
        high = max(chunk, key=_hi)
        merged.append(Bucket(first.x0, last.x1, low.lo, low.lo_x, high.hi, high.hi_x, last.last, sum(b.n for b in chunk)))
    return merged


def _lo(bucket: Bucket) -> float:
    return bucket.lo


def _hi(bucket: Bucket) -> float:
    return bucket.hi


def buckets_of(xs: list[float], ys: list[float], max_buckets: int) -> list[Bucket]:
    """Consecutive points straight into at most ``max_buckets`` buckets (O(len(xs)))."""
    n = len(xs)
    group = max(1, math.ceil(n / max(1, max_buckets)))
    out: list[Bucket] = []
    for start in range(0, n, group):
        end = min(n, start + group)
        segment = ys[start:end]
        lo = start + segment.index(min(segment))
        hi = start + segment.index(max(segment))
        out.append(Bucket(xs[start], xs[end - 1], ys[lo], xs[lo], ys[hi], xs[hi], ys[end - 1], end - start))
    return out


def bucket_points(buckets: Iterable[Bucket], envelope: bool) -> tuple[list[float], list[float]]:
    """Points to draw: min and max of each bucket in the order they happened, or the last value."""
    xs: list[float] = []
    ys: list[float] = []
    for bucket in buckets:
        if not envelope or bucket.n == 1 or bucket.lo == bucket.hi:
            xs.append(bucket.x1 if not envelope else bucket.hi_x)
            ys.append(bucket.last if not envelope else bucket.hi)
            continue
        first, second = ((bucket.lo_x, bucket.lo), (bucket.hi_x, bucket.hi))
        if second[0] < first[0]:
            first, second = second, first
        xs.extend((first[0], second[0]))
        ys.extend((first[1], second[1]))
    return xs, ys


class DecimatedSeries:
    """An append-only series held in at most ``capacity`` buckets.

    Each bucket covers ``span`` points; when the buckets overflow, neighbours are merged
    pairwise and ``span`` doubles. Memory and drawing cost stay bounded by ``capacity``.
    """

    def __init__(self, capacity: int = 512):
        if capacity < 2:
            raise ValueError("capacity must be >= 2")
        self.capacity = capacity
        self.span = 1
        self.count = 0
        self._buckets: list[Bucket] = []

    def __len__(self) -> int:
        return len(self._buckets)

    def append(self, x: float, y: float) -> None:
        self.count += 1
        point = Bucket.point(x, y)
        if self._buckets and self._buckets[-1].n < self.span:
            self._buckets[-1].absorb(point)
            return
        self._buckets.append(point)
        if len(self._buckets) > self.capacity:
            self._buckets = reduce_buckets(self._buckets, math.ceil(len(self._buckets) / 2))
            self.span *= 2

    def buckets(self, max_buckets: int) -> list[Bucket]:
        return reduce_buckets(self._buckets, max_buckets)

    @property
    def last(self) -> float | None:
        return self._buckets[-1].last if self._buckets else None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass
class PlotView:
    """What the loss plot draws: per series (x, y) lists, already decimated."""

    series: dict[str, tuple[list[float], list[float]]]
    evals: list[tuple[int, float]]
    window: int
    smoothing: float


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


def find_metric(metrics: dict[str, float], *names: str) -> float | None:
    """``metrics["AP50"]`` tolerant of spelling (``bbox/AP50``, ``ap50``, ``map_50``)."""
    wanted = {n.lower() for n in names}
    for key, value in metrics.items():
        simple = key.lower().rsplit("/", 1)[-1].replace("_", "").replace("@", "").replace(".", "")
        if simple in wanted and _finite(value):
            return float(value)
    return None


@dataclass
class OOMEvent:
    iter: int
    message: str


class CockpitState:
    """Everything the panes show; fold events in with :meth:`apply`."""

    def __init__(self, run_name: str = "", classes: Iterable[str] = (), *, memory_points: int = 120):
        self.run_name = run_name
        self.run_dir: str | None = None
        self.classes = list(classes)
        self.state: RunState = RunState.IDLE
        self.state_reason = ""
        self.iter = 0
        self.epoch = 0
        self.total_iters = 0
        self.iters_per_epoch = 0
        self.lr: float | None = None
        self.device = ""
        self.gpu_name = ""
        self.environment: dict[str, Any] = {}
        self.its: float | None = None
        self._rate_ref: tuple[float, int] | None = None
        self.losses = LossHistory()
        self.evals: list[tuple[int, float]] = []
        self.last_eval: EvalResult | None = None
        self.memory: dict[str, float] = {}
        self.memory_history: deque[float] = deque(maxlen=memory_points)
        self.peak_mb = 0.0
        self.oom_events: list[OOMEvent] = []
        self.checklist = Checklist()
        self.preview: PreviewReady | None = None
        self.last_checkpoint: str | None = None
        self.last_checkpoint_iter: int | None = None
        self.last_error: RunError | None = None
        self.outcome: str | None = None
        self.warnings: deque[RunWarning] = deque(maxlen=50)

    # -- derived -----------------------------------------------------------------------
    @property
    def eta_seconds(self) -> float | None:
        if not self.its or not self.total_iters or self.state.is_terminal:
            return None
        return max(0, self.total_iters - self.iter) / self.its

    @property
    def flagged_rows(self) -> list[ChecklistRow]:
        """FLAGGED checklist rows, worst first."""
        return self.checklist.flagged()

    def class_name(self, label: int) -> str:
        if 1 <= label <= len(self.classes):
            return self.classes[label - 1]
        return f"class {label}"

    # -- folding -----------------------------------------------------------------------
    def apply(self, event: Event) -> set[str]:
        """Fold one event in; returns the panes that changed."""
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        return handler(event) if handler else set()

    def apply_all(self, events: Iterable[Event]) -> set[str]:
        changed: set[str] = set()
        for event in events:
            changed |= self.apply(event)
        return changed

    def _on_RunStarted(self, event: RunStarted) -> set[str]:
        self.run_dir = event.run_dir
        if event.run_dir:
            self.run_name = Path(event.run_dir).name
        self.environment = dict(event.environment)
        self.device = str(event.environment.get("device", ""))
        self.gpu_name = str(event.environment.get("gpu_name") or "")
        self.total_iters = event.total_iters
        self.iters_per_epoch = event.iters_per_epoch
        self.iter = event.start_iter
        self.epoch = event.start_epoch
        classes = event.config.get("data", {}).get("classes") if isinstance(event.config, dict) else None
        if classes:
            self.classes = list(classes)
        lr = event.config.get("optim", {}).get("lr") if isinstance(event.config, dict) else None
        if self.lr is None and _finite(lr):
            self.lr = float(lr)
        self._rate_ref = None
        return {STATUS}

    def _on_StepMetrics(self, event: StepMetrics) -> set[str]:
        if self._rate_ref is not None and event.iter > self._rate_ref[1] and event.time > self._rate_ref[0]:
            rate = (event.iter - self._rate_ref[1]) / (event.time - self._rate_ref[0])
            self.its = rate if self.its is None else 0.7 * self.its + 0.3 * rate
        self._rate_ref = (event.time, event.iter)
        self.iter = event.iter
        self.epoch = event.epoch
        self.lr = event.lr
        self.losses.add(event.iter, event.losses, event.loss)
        changed = {STATUS, LOSSES}
        if event.memory:
            self.memory = dict(event.memory)
            current = self.memory.get("allocated_mb", self.memory.get("rss_mb"))
            if _finite(current):
                self.memory_history.append(float(current))
            self.peak_mb = max(self.peak_mb, float(self.memory.get("peak_mb", current or 0.0) or 0.0))
            changed.add(MEMORY)
        return changed

    def _on_EvalResult(self, event: EvalResult) -> set[str]:
        self.last_eval = event
        ap50 = find_metric(event.metrics, "ap50", "map50")
        if ap50 is not None:
            self.evals.append((event.iter, ap50))
        return {LOSSES, STATUS}

    def _on_StateChanged(self, event: StateChanged) -> set[str]:
        self.state = RunState(event.state)
        self.state_reason = event.reason
        # A pause (or an eval) is not training time: restart the it/s reference.
        self._rate_ref = None
        return {STATUS}

    def _on_LRChanged(self, event: LRChanged) -> set[str]:
        self.lr = event.lr
        return {STATUS}

    def _on_CheckpointSaved(self, event: CheckpointSaved) -> set[str]:
        self.last_checkpoint = event.path
        self.last_checkpoint_iter = event.iter
        return {STATUS}

    def _on_CommandAck(self, event: CommandAck) -> set[str]:
        return set()

    def _on_RunWarning(self, event: RunWarning) -> set[str]:
        self.warnings.append(event)
        if event.category == "oom_retry":
            self.oom_events.append(OOMEvent(event.iter, event.message))
            return {MEMORY}
        return set()

    def _on_RunError(self, event: RunError) -> set[str]:
        self.last_error = event
        return {STATUS}

    def _on_FlagRaised(self, event: FlagRaised) -> set[str]:
        self.checklist.apply(event)
        return {CHECKLIST}

    def _on_PreviewReady(self, event: PreviewReady) -> set[str]:
        self.preview = event
        return {PREVIEW}

    def _on_RunFinished(self, event: RunFinished) -> set[str]:
        self.state = RunState(event.state)
        self.outcome = event.outcome
        self.state_reason = event.reason or event.outcome
        self.iter = max(self.iter, event.iter)
        return {STATUS}


def format_mb(value: float | None) -> str:
    if value is None or not _finite(value):
        return "n/a"
    if value >= 1024:
        return f"{value / 1024:.2f} GiB"
    return f"{value:.0f} MiB"
