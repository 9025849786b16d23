"""A baseline run for the losses pane: another run's curves, read once from its run dir.

``cockpit run CONFIG --baseline RUN_DIR`` (or ``B`` in the losses pane) loads a
:class:`Baseline`; the pane draws its curves faintly behind the live ones, by iteration,
and its legend says where the live run stands against it at the same iteration.

The baseline is a snapshot: a baseline that is itself still running is read as it is
when loaded. Every series is held as sorted numpy arrays, raw and smoothed with each of
the pane's EMA factors, pre-decimated to :data:`MAX_POINTS`, so a redraw clips and
decimates it in O(log n + pane width) (``decimation.envelope``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from cockpit.ui.decimation import envelope
from cockpit.ui.loss_history import SERIES, SMOOTHING

MAX_POINTS = 32_768
"""Points kept per baseline series (min/max pairs): ample for any pane, bounded for any run."""


class BaselineError(Exception):
    """The folder cannot serve as a baseline; ``str()`` is a one-line reason."""


@dataclass(frozen=True)
class Baseline:
    """One earlier run's loss curves and AP50 evaluations, ready to draw."""

    name: str
    run_dir: str
    curves: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]]
    """(series, EMA factor) -> (iterations, values), sorted by iteration, pre-decimated."""
    raw: dict[str, tuple[np.ndarray, np.ndarray]]
    """Series -> every recorded (iteration, value): what the legend quotes."""
    evals: list[tuple[int, float]] = field(default_factory=list)
    last_iter: int = 0

    def view(self, first: float, last: float, width: int, smoothing: float, names: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each series clipped to ``first..last`` and decimated to ``width`` buckets."""
        out = {}
        for name in names:
            arrays = self.curves.get((name, smoothing))
            if arrays is not None:
                out[name] = envelope(arrays[0], arrays[1], first, last, width)
        return out

    def value_at(self, name: str, iteration: float) -> tuple[int, float] | None:
        """The baseline's recorded (iteration, value) at or just before ``iteration``."""
        arrays = self.raw.get(name)
        if arrays is None or arrays[0].size == 0:
            return None
        index = int(np.searchsorted(arrays[0], iteration, side="right")) - 1
        if index < 0:
            return None
        return int(arrays[0][index]), float(arrays[1][index])

    def evals_between(self, first: float, last: float) -> list[tuple[int, float]]:
        return [(x, y) for x, y in self.evals if first <= x <= last]


def _sorted_unique(xs: list[float], ys: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Finite points by iteration; a resumed run's repeated iteration keeps its newest value."""
    latest: dict[float, float] = {}
    for x, y in zip(xs, ys):
        if math.isfinite(y):
            latest[x] = y
    order = sorted(latest)
    return np.asarray(order, dtype=np.float64), np.asarray([latest[x] for x in order], dtype=np.float64)


def _ema(values: np.ndarray, alpha: float) -> np.ndarray:
    out = np.empty_like(values)
    previous = None
    for index, value in enumerate(values.tolist()):
        previous = value if previous is None else alpha * previous + (1 - alpha) * value
        out[index] = previous
    return out


def baseline_from_series(name: str, run_dir: str, series: dict[str, tuple[list[float], list[float]]],
                         evals: list[tuple[int, float]]) -> Baseline:
    """A baseline from plain (iterations, values) lists per series (what a run dir holds)."""
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    curves: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = {}
    last = 0
    for key in SERIES:
        xs, ys = _sorted_unique(*series.get(key, ([], [])))
        if xs.size == 0:
            continue
        raw[key] = (xs, ys)
        last = max(last, int(xs[-1]))
        for alpha in SMOOTHING:
            smoothed = ys if alpha == 0.0 else _ema(ys, alpha)
            curves[(key, alpha)] = envelope(xs, smoothed, -math.inf, math.inf, MAX_POINTS // 2)
    clean_evals = sorted((int(x), float(y)) for x, y in evals if math.isfinite(y))
    return Baseline(name=name, run_dir=run_dir, curves=curves, raw=raw, evals=clean_evals, last_iter=last)


def load_baseline(run_dir: str | Path) -> Baseline:
    """Read ``run_dir`` (tolerantly: a damaged or still-running run gives what it has).

    Raises :class:`BaselineError` when the folder does not exist or holds no loss record.
    """
    from cockpit.report.rundir import read_run_dir

    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise BaselineError(f"--baseline {run_dir}: no such run directory")
    run = read_run_dir(path)
    series = {key: run.series(key) for key in SERIES}
    if not any(xs for xs, _ in series.values()):
        raise BaselineError(f"--baseline {run_dir}: no training records to compare against (metrics.jsonl and events.jsonl have none)")
    evals = []
    for record in run.evals:
        it, ap50 = record.get("iter"), (record.get("eval") or {}).get("AP50")
        if isinstance(it, (int, float)) and isinstance(ap50, (int, float)):
            evals.append((int(it), float(ap50)))
    return baseline_from_series(run.name, str(run.path), series, evals)
