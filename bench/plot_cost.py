"""Loss-pane redraw cost and history memory at 1k, 100k and 1M recorded steps.

A ``LossHistory`` (the app's view-model for the loss pane) is fed N records through its
real ``add`` path (noisy losses, a slow decay and a few spikes), then a ``LossPlot``
mounted in a headless Textual app (``run_test``, 120 x 32) draws it. One redraw is what
the app does when new records arrive: the legend, ``history.view`` (decimation to the
pane's width), the braille chart build and its rows as strips -- timed by a ``redraw``
(which invalidates the chart's cached rows) and reading every row through the chart's
``render_line``, as the compositor does (median of repeats, raw and EMA-smoothed views,
whole-run and last-2000 windows). The ``baseline`` views
add a baseline run of the same length (``--baseline``: its curves drawn faintly behind).
All lengths are built first and then take turns, round by round, so the growth from
1k to 1M compares redraws seconds apart, not minutes.

Memory is the deep size of the history object (every container, bucket and float
reachable from it), measured with ``gc.get_referents``.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import statistics
import sys
import time
import types

import common

from textual.app import App, ComposeResult

from cockpit.ui.baseline import Baseline, baseline_from_series
from cockpit.ui.loss_history import SERIES, LossHistory
from cockpit.ui.widgets.loss_plot import LossPlot, _Chart

SIZES = (1_000, 100_000) if common.QUICK else (1_000, 100_000, 1_000_000)
ROUNDS = 2 if common.QUICK else 6
REPEATS = 3 if common.QUICK else 5  # redraws per (round, length, view)


def make_history(n: int, seed: int = 0) -> tuple[LossHistory, float]:
    rng = random.Random(seed)
    history = LossHistory()
    started = time.perf_counter()
    for i in range(1, n + 1):
        decay = 0.2 + 1.5 / math.sqrt(1 + i / 50)
        spike = 5.0 if rng.random() < 1e-4 else 1.0
        losses = {
            "loss_classifier": decay * 0.4 * spike * (0.8 + 0.4 * rng.random()),
            "loss_box_reg": decay * 0.3 * (0.8 + 0.4 * rng.random()),
            "loss_objectness": decay * 0.2 * (0.8 + 0.4 * rng.random()),
            "loss_rpn_box_reg": decay * 0.1 * (0.8 + 0.4 * rng.random()),
        }
        history.add(i, losses, sum(losses.values()))
    return history, (time.perf_counter() - started) / n


def make_baseline(n: int, seed: int = 1) -> Baseline:
    """A baseline run of ``n`` records (another seed of the same curves)."""
    rng = random.Random(seed)
    xs = list(range(1, n + 1))
    series: dict[str, tuple[list[float], list[float]]] = {name: (xs, []) for name in SERIES}
    for i in xs:
        decay = 0.25 + 1.6 / math.sqrt(1 + i / 50)
        terms = [decay * share * (0.8 + 0.4 * rng.random()) for share in (0.4, 0.3, 0.2, 0.1)]
        for name, value in zip(SERIES, [*terms, sum(terms)]):
            series[name][1].append(value)
    evals = [(i, min(1.0, i / n)) for i in range(0, n + 1, max(1, n // 20))]
    return baseline_from_series("baseline", "baseline", series, evals)


_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def deep_size(root: object) -> int:
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


class PlotApp(App):
    def compose(self) -> ComposeResult:
        yield LossPlot()


VIEWS = (
    ("raw", 0.0, 0, False), ("ema", 0.9, 0, False), ("window", 0.0, 2000, False),
    ("baseline", 0.0, 0, True), ("baseline_ema_window", 0.9, 2000, True),
)


async def redraw_times(runs: dict[int, tuple[LossHistory, Baseline]]) -> dict[int, dict[str, float]]:
    """Median redraw time of every (length, view), the lengths taking turns round by round."""
    app = PlotApp()
    samples: dict[tuple[int, str], list[float]] = {(n, label): [] for n in runs for label, *_ in VIEWS}
    sizes = list(runs)
    async with app.run_test(size=(120, 32)) as pilot:
        plot = app.query_one(LossPlot)
        chart = plot.query_one(_Chart)
        for round_index in range(ROUNDS):
            # Every length in each round, in rotating order: timed one after the other,
            # the lengths compared the VM's moods (growth x1.46 and x2.09 half an hour
            # apart) more than the pane's work.
            order = sizes[round_index % len(sizes):] + sizes[: round_index % len(sizes)]
            for label, smoothing, window, with_baseline in VIEWS:
                for n in order:
                    history, baseline = runs[n]
                    evals = [(i, min(1.0, i / max(1, n))) for i in range(0, n + 1, max(1, n // 20))]
                    plot.show(history, evals, baseline if with_baseline else None)
                    plot.smoothing, plot.window = smoothing, window
                    await pilot.pause()
                    for _ in range(REPEATS):
                        started = time.perf_counter()
                        plot.redraw()  # legend + cache invalidation, as on every new record
                        for row in range(chart.size.height):
                            chart.render_line(row)
                        samples[(n, label)].append(time.perf_counter() - started)
    return {n: {label: 1000 * statistics.median(samples[(n, label)]) for label, *_ in VIEWS} for n in sizes}


def main() -> None:
    runs, add_costs, sizes_mb = {}, {}, {}
    for n in SIZES:
        history, add_costs[n] = make_history(n)
        sizes_mb[n] = deep_size(history) / 2**20
        runs[n] = (history, make_baseline(n))
    gc.collect()
    times = asyncio.run(redraw_times(runs))
    rows = {
        str(n): {
            "redraw_ms": max(times[n].values()),
            "redraw_ms_by_view": times[n],
            "history_mb": sizes_mb[n],
            "add_us": 1e6 * add_costs[n],
        }
        for n in SIZES
    }
    first, last = rows[str(SIZES[0])], rows[str(SIZES[-1])]
    common.emit(
        {
            "bench": "plot_cost",
            "pane": "120x32",
            "rounds": ROUNDS,
            "sizes": rows,
            "worst_redraw_ms": max(r["redraw_ms"] for r in rows.values()),
            "growth": last["redraw_ms"] / first["redraw_ms"],
            "history_mb_at_max": last["history_mb"],
            "max_steps": SIZES[-1],
        }
    )


if __name__ == "__main__":
    main()
