"""What the live rules look at: bounded per-iteration metric history plus eval facts.

:class:`MetricHistory` is fed once per iteration by the diagnostics hook. Recording is
O(1) (a write into a preallocated numpy ring buffer), memory is bounded by ``capacity``
however long the run, and the rules read ordered copies of the last N values. Nothing
here touches a tensor: the trainer has already moved every number to the CPU.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

SCORE_BIN_EDGES: tuple[float, ...] = tuple(round(i / 20, 2) for i in range(21))
"""Fixed edges of every score histogram (0.00, 0.05, ..., 1.00): comparable across evals."""


class Ring:
    """A fixed-capacity float ring buffer; ``values()`` returns oldest -> newest."""

    __slots__ = ("_buf", "_next", "_size")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._buf = np.full(capacity, np.nan, dtype=np.float64)
        self._next = 0
        self._size = 0

    @property
    def capacity(self) -> int:
        return self._buf.shape[0]

    def append(self, value: float) -> None:
        self._buf[self._next] = value
        self._next = (self._next + 1) % self._buf.shape[0]
        if self._size < self._buf.shape[0]:
            self._size += 1

    def __len__(self) -> int:
        return self._size

    def values(self, last: int | None = None) -> np.ndarray:
        """A copy of the last ``last`` values (all kept values when None), oldest first."""
        n = self._size if last is None else max(0, min(int(last), self._size))
        if n == 0:
            return np.empty(0, dtype=np.float64)
        cap = self._buf.shape[0]
        start = (self._next - n) % cap
        if start + n <= cap:
            return self._buf[start : start + n].copy()
        return np.concatenate((self._buf[start:], self._buf[: (start + n) - cap]))

    def last(self, default: float = math.nan) -> float:
        if self._size == 0:
            return default
        return float(self._buf[(self._next - 1) % self._buf.shape[0]])


def score_histogram(scores: Iterable[float] | np.ndarray) -> list[int]:
    """Counts of ``scores`` in the fixed :data:`SCORE_BIN_EDGES` bins (1.0 falls in the last)."""
    arr = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    counts, _ = np.histogram(np.clip(arr, 0.0, 1.0), bins=np.asarray(SCORE_BIN_EDGES))
    return [int(c) for c in counts]


@dataclass(frozen=True)
class EvalFacts:
    """One evaluation (full COCO eval or eval-mode probe), reduced to what the rules need."""

    iter: int
    num_images: int
    detections_above: int
    """Detections scoring at least ``score_thresh`` (over all evaluated images)."""
    num_scores: int
    """Every raw detection the model returned (above the model's own box_score_thresh)."""
    max_score: float
    score_thresh: float
    histogram: list[int] = field(default_factory=list)
    """Counts in :data:`SCORE_BIN_EDGES` bins of every raw detection score."""
    images_without_detections: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    edges: list[float] | None = None
    """Bin edges of ``histogram`` when not :data:`SCORE_BIN_EDGES` (a histogram handed over ready-made)."""

    @property
    def bin_edges(self) -> list[float]:
        return list(self.edges) if self.edges is not None else list(SCORE_BIN_EDGES)

    @classmethod
    def from_scores(
        cls,
        iter: int,
        scores: Iterable[float] | np.ndarray,
        *,
        num_images: int,
        score_thresh: float,
        images_without_detections: int = 0,
        metrics: Mapping[str, float] | None = None,
    ) -> "EvalFacts":
        arr = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        return cls(
            iter=int(iter),
            num_images=int(num_images),
            detections_above=int((arr >= score_thresh).sum()),
            num_scores=int(arr.size),
            max_score=float(arr.max()) if arr.size else 0.0,
            score_thresh=float(score_thresh),
            histogram=score_histogram(arr),
            images_without_detections=int(images_without_detections),
            metrics=dict(metrics or {}),
        )


class LoadHistory:
    """One sample per logged step: the machine's load and the iterations' pace meanwhile."""

    def __init__(self, capacity: int = 200) -> None:
        self.iters = Ring(capacity)
        self.others = Ring(capacity)
        """Cores other processes kept busy since the previous sample."""
        self.cores = Ring(capacity)
        self.threads = Ring(capacity)
        self.iter_time = Ring(capacity)
        """Mean iteration time since the previous sample."""

    def record(self, iter: int, cpu: Mapping[str, float], iter_time: float) -> None:
        self.iters.append(iter)
        self.others.append(float(cpu.get("cpu_others", math.nan)))
        self.cores.append(float(cpu.get("cpu_cores", math.nan)))
        self.threads.append(float(cpu.get("torch_threads", math.nan)))
        self.iter_time.append(iter_time)


@dataclass(frozen=True)
class NonFiniteFacts:
    """The last step whose loss (or gradient) was NaN/Inf."""

    iter: int
    terms: dict[str, float]
    """Only the non-finite loss terms (``loss`` is the total)."""
    grad_norm: float
    lr: float


class MetricHistory:
    """Bounded history of one run's per-iteration metrics and its evaluation facts.

    ``record_step`` appends one value to every ring (O(1)); a loss term seen for the first
    time mid-run gets its own ring from then on, so term rings may be shorter than
    ``iters`` -- rules align them at the newest end. Non-finite steps are kept out of the
    rings (they would poison every mean) and remembered in ``last_nonfinite``.
    """

    INITIAL_WINDOW = 20
    """The first this-many finite total losses define ``initial_loss``."""

    def __init__(self, capacity: int = 2000) -> None:
        self.capacity = int(capacity)
        self.iters = Ring(capacity)
        self.total = Ring(capacity)
        self.terms: dict[str, Ring] = {}
        self.lr = Ring(capacity)
        self.iter_time = Ring(capacity)
        self.data_time = Ring(capacity)
        self.grad_norm = Ring(capacity)
        self.gt_boxes = Ring(capacity)
        """Ground-truth boxes in the step's batch (NaN when the trainer did not say)."""
        self.steps = 0
        """Finite steps recorded in total (not bounded by capacity)."""
        self.last_iter = 0
        self._initial: list[float] = []
        self.last_nonfinite: NonFiniteFacts | None = None
        self.nonfinite_count = 0
        self.amp_overflow_run = 0
        """Consecutive steps whose only non-finite value was the gradient under AMP."""
        self.evals: deque[EvalFacts] = deque(maxlen=20)
        self.probes: deque[EvalFacts] = deque(maxlen=20)
        self.ooms: deque[dict[str, Any]] = deque(maxlen=20)
        self.load = LoadHistory()

    # -- recording ---------------------------------------------------------------------
    def record_step(
        self,
        iter: int,
        losses: Mapping[str, float],
        loss: float,
        *,
        lr: float = math.nan,
        iter_time: float = math.nan,
        data_time: float = math.nan,
        grad_norm: float = math.nan,
        gt_boxes: float = math.nan,
        amp: bool = False,
        finite: bool | None = None,
    ) -> bool:
        """Record one iteration; returns False (and records it as non-finite) for NaN/Inf.

        ``finite`` is the trainer's own verdict (loss terms and gradient norm); when None it
        is worked out here. A NaN ``grad_norm`` with ``finite`` left None counts as
        "not measured", not as a bad gradient.
        """
        self.last_iter = int(iter)
        bad = {k: float(v) for k, v in losses.items() if not math.isfinite(v)}
        if not math.isfinite(loss):
            bad["loss"] = float(loss)
        # Under AMP an Inf/NaN gradient with finite losses is the GradScaler's normal overflow
        # skip (it lowers the scale and retries): counted, not a problem unless it persists.
        if finite is None:
            grad_bad = math.isinf(grad_norm)
        else:
            grad_bad = not finite and not bad
        if not bad and grad_bad and amp:
            self.amp_overflow_run += 1
            return False
        if bad or grad_bad:
            self.nonfinite_count += 1
            self.last_nonfinite = NonFiniteFacts(int(iter), bad, float(grad_norm), float(lr))
            return False
        self.amp_overflow_run = 0
        self.iters.append(iter)
        self.total.append(loss)
        for name, value in losses.items():
            ring = self.terms.get(name)
            if ring is None:
                ring = self.terms[name] = Ring(self.capacity)
            ring.append(value)
        self.lr.append(lr)
        self.iter_time.append(iter_time)
        self.data_time.append(data_time)
        self.grad_norm.append(grad_norm)
        self.gt_boxes.append(gt_boxes)
        self.steps += 1
        if len(self._initial) < self.INITIAL_WINDOW:
            self._initial.append(float(loss))
        return True

    def record_eval(self, facts: EvalFacts) -> None:
        self.evals.append(facts)

    def record_probe(self, facts: EvalFacts) -> None:
        self.probes.append(facts)

    def record_oom(self, facts: Mapping[str, Any]) -> None:
        self.ooms.append(dict(facts))

    # -- reading -----------------------------------------------------------------------
    def term(self, name: str, last: int | None = None) -> np.ndarray:
        ring = self.terms.get(name)
        return ring.values(last) if ring is not None else np.empty(0)

    @property
    def initial_loss(self) -> float:
        """Median of the first finite total losses (NaN before any)."""
        return float(np.median(self._initial)) if self._initial else math.nan

    def recent_loss(self, last: int = 20) -> float:
        """Median of the last ``last`` total losses (NaN before any)."""
        values = self.total.values(last)
        return float(np.median(values)) if values.size else math.nan
