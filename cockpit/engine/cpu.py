"""How many CPU threads torch may use, and how busy the other processes keep the machine.

A shared machine (a GPU server where data loaders, other users' jobs and editors run
beside the training) is the normal case. torch's default intra-op thread count is the
number of cores, so with one core of two taken by another process, both of torch's
OpenMP threads meet at every barrier while one of them waits for a time slice: the tiny
sample measured 0.061 s/it alone, 0.204 s/it with default threads and 0.079 s/it with one
thread (BENCHMARKS.md). ``run.threads = "auto"`` therefore asks how many cores are
actually free when the run starts.

The rule (``auto``): ``cores`` is the number of CPUs this process may run on
(``os.sched_getaffinity``); ``others`` is how many cores the *other* processes kept busy
over a short sample of ``/proc/stat`` (all CPUs' busy time minus this process's own CPU
time); threads = ``round(cores - others)``, at least 1 and at most torch's own default
(which already honours ``OMP_NUM_THREADS``). Where ``/proc/stat`` cannot be read the
default stands.

The same measurement, taken once per logged step (two small file reads), goes into each
step record as ``cpu`` so the diagnostics can tell "the machine got busy" from "the model
got slower".
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read_stat() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from ``/proc/stat``."""
    try:
        with open("/proc/stat", "rb") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    total = sum(ticks[:8])
    return (total - idle) / _HZ, total / _HZ


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class Reading:
    """A point in time: the machine's busy/total CPU seconds and this process's own."""

    wall: float
    busy: float
    total: float
    own: float


class LoadMeter:
    """Other processes' CPU use between two readings, in cores (1.0 = one core kept busy).

    ``stat``, ``own`` and ``clock`` are injectable so tests can feed hand-made counters.
    """

    def __init__(
        self,
        stat: Callable[[], tuple[float, float] | None] = _read_stat,
        own: Callable[[], float] = _own_cpu,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stat, self._own, self._clock = stat, own, clock
        self._last = self._read()

    def _read(self) -> Reading | None:
        stat = self._stat()
        if stat is None:
            return None
        return Reading(self._clock(), stat[0], stat[1], self._own())

    def others(self) -> float | None:
        """Cores the other processes kept busy since the previous call (None: unknown)."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now.total <= last.total:
            return None
        # /proc/stat counts CPU-seconds over every CPU: busy seconds per wall second = cores.
        elapsed_cpu = now.total - last.total
        wall = elapsed_cpu / max(1, os.cpu_count() or 1)
        others = (now.busy - last.busy) - (now.own - last.own)
        return max(0.0, others / wall) if wall > 0 else None


def auto_threads(cores: int, others: float | None, default: int) -> int:
    """The ``auto`` rule: the free cores (``cores - others``, rounded), 1 <= n <= ``default``."""
    if others is None:
        return max(1, min(default, cores))
    return max(1, min(default, cores, int(cores - others + 0.5)))


def choose_threads(setting: int | str, *, sample_seconds: float = 0.25, meter: LoadMeter | None = None) -> tuple[int, str]:
    """The intra-op thread count for ``run.threads`` and a one-line reason for the record."""
    import torch

    if setting != "auto":
        return int(setting), f"run.threads = {setting}"
    default = torch.get_num_threads()
    cores = usable_cores()
    meter = meter or LoadMeter()
    if sample_seconds > 0:
        time.sleep(sample_seconds)
    others = meter.others()
    threads = auto_threads(cores, others, default)
    seen = "unknown" if others is None else f"{others:.1f}"
    return threads, f"auto: {cores} usable core(s), other processes busy on {seen}, torch default {default}"


def apply_threads(setting: int | str) -> tuple[int, str]:
    """Decide and set torch's intra-op threads; call it on the thread that trains.

    OpenMP's thread count is a per-thread setting: set in the trainer thread, it governs
    the parallel regions that thread runs, which are the training's.
    """
    import torch

    threads, reason = choose_threads(setting)
    torch.set_num_threads(threads)
    return threads, reason
