"""Interleaved timing: the runs being compared are alive at once, and take turns.

Not a benchmark itself. This VM's own speed wanders by +-25% over minutes (a fixed
pure-Python loop, nothing else running: 193-308 ms), which is larger than the 2-5% the
overhead rows measure; two runs timed one after the other compare the machine's moods as
much as the code. So every side is started and warmed up, then frozen, and the sides take
turns: thaw one for a slice of a few seconds, freeze it, thaw the next (the order mirrored
every other round, ABBA). Each slice yields the time and the number of whole iterations
between the first and the last iteration that ended inside it (past a short settling time
after the thaw); a round's ratio compares its sides' turns, and the figure is the median
over rounds (see ``ratio``). Neighbouring slices see the same machine, so the drift falls
out of the ratio; periodic work (epoch-end checkpoints, snapshots, probes) is counted in
proportion, because the sides move through the same iterations at nearly the same pace.

Freezing uses the cgroup freezer (v2 ``cgroup.freeze``, else v1 ``freezer.state``): the
process is held without a signal, so it cannot tell. Without a writable freezer (not root,
no cgroup fs) a side can fall back to SIGSTOP/SIGCONT -- but not a Textual app: Textual
takes any SIGCONT as the return from Ctrl+Z and re-enters application mode.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import common

_CGROUP_ROOTS = (
    (Path("/sys/fs/cgroup"), "v2"),
    (Path("/sys/fs/cgroup/unified"), "v2"),
    (Path("/sys/fs/cgroup/freezer"), "v1"),
)


_groups = itertools.count(1)


class Freezer:
    """Holds one process (and whatever it forks later) still, and lets it go again."""

    def __init__(self, name: str, pid: int, allow_signals: bool = True) -> None:
        self.pid = pid
        self.group: Path | None = None
        self.kind = "SIGSTOP"
        for root, kind in _CGROUP_ROOTS:
            if kind == "v2" and not (root / "cgroup.controllers").exists():
                continue
            if kind == "v1" and not root.is_dir():
                continue
            group = root / f"cockpit-bench-{os.getpid()}-{next(_groups)}-{name}"
            try:
                group.mkdir()
                if kind == "v2" and not (group / "cgroup.freeze").exists():
                    raise OSError("this kernel's cgroup v2 has no freezer (it came in 5.2)")
                (group / "cgroup.procs").write_text(str(pid))
            except OSError:
                try:
                    group.rmdir()
                except OSError:
                    pass
                continue
            self.group, self.kind = group, f"cgroup {kind} freezer"
            break
        if self.group is None and not allow_signals:
            raise RuntimeError(
                "this side needs a writable cgroup freezer (Linux, as root): a Textual app takes SIGCONT "
                "as the return from Ctrl+Z and re-enters application mode, so SIGSTOP would bias it"
            )

    def freeze(self) -> None:
        self._set(True)

    def thaw(self) -> None:
        self._set(False)

    def _set(self, frozen: bool) -> None:
        if self.group is None:
            for pid in _tree(self.pid):
                try:
                    os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
                except ProcessLookupError:
                    pass
            return
        if (self.group / "cgroup.freeze").exists():
            (self.group / "cgroup.freeze").write_text("1" if frozen else "0")
            done = lambda: ("frozen 1" in (self.group / "cgroup.events").read_text()) == frozen  # noqa: E731
        else:
            (self.group / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
            want = "FROZEN" if frozen else "THAWED"
            done = lambda: (self.group / "freezer.state").read_text().strip() == want  # noqa: E731
        deadline = time.monotonic() + 10
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}: the process did not {'freeze' if frozen else 'thaw'} in 10 s")
            time.sleep(0.001)

    def kill(self) -> None:
        """SIGKILL every process in the group (and the one held by signals), children too."""
        pids = _tree(self.pid)
        if self.group is not None:
            try:
                pids += [int(pid) for pid in (self.group / "cgroup.procs").read_text().split()]
            except OSError:
                pass
        for pid in set(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def release(self) -> None:
        """Remove the group once its processes have gone (call after thawing and killing them)."""
        if self.group is None:
            return
        for _ in range(500):
            try:
                self.group.rmdir()
                return
            except OSError:
                time.sleep(0.01)
        print(f"interleave: could not remove {self.group} (processes left in it?)", file=sys.stderr)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


@dataclass
class Side:
    """One of the runs being compared: how to start it, and where its iterations show.

    ``start`` launches the run and returns ``(pid, stop)``: the process to freeze and a
    callable that ends it. While it runs, the side's ``record(iteration)`` is called (from
    a reader or poller thread) as each iteration's line or record appears.
    """

    name: str
    start: Callable[["Side"], tuple[int, Callable[[], None]]]
    allow_signals: bool = True
    group: int = 0
    """Which set of fresh processes this side belongs to: sides are compared within a group
    (``ratio``), and several groups of the same sides show what differs between processes."""
    command: str = ""
    """What the side runs, for the message when it dies."""
    probe: Callable[[], dict[str, float]] | None = None
    """Cumulative counters (CPU seconds of a thread, say), read before and after each turn."""
    seen: list[tuple[int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, iteration: int) -> None:
        with self.lock:
            self.seen.append((iteration, time.perf_counter()))

    def last(self) -> int:
        with self.lock:
            return self.seen[-1][0] if self.seen else -1


@dataclass
class Slice:
    side: str
    round: int
    seconds: float
    iterations: int
    turn_s: float = 0.0
    """Wall time from thaw to freeze (``seconds`` is the part between whole iterations)."""
    counters: dict[str, float] = field(default_factory=dict)
    """How much each of the side's probe counters grew during the turn."""
    group: int = 0


def stdout_lines(side: Side, cmd: list[str], env: dict | None = None) -> tuple[int, Callable[[], None]]:
    """Start ``cmd`` with its lines on a pipe; an ``it N`` line marks iteration N's end."""
    side.command = " ".join(cmd)
    proc = subprocess.Popen(cmd, cwd=common.REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            bufsize=1, env=env)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = common.ITER_LINE.match(line)
            if match:
                side.record(int(match.group(1)))

    threading.Thread(target=read, daemon=True).start()

    def stop() -> None:
        proc.kill()
        proc.wait()

    return proc.pid, stop


def poll_metrics(side: Side, output_dir: Path, alive: Callable[[], bool], every: float = 0.02) -> Callable[[], None]:
    """Watch the run directory's ``metrics.jsonl`` (flushed per record) for training records.

    Polled every 20 ms by a thread of this process, whichever side is running, so every
    polled side pays for it alike; the poll adds 0-20 ms to a time, on both ends of a slice.
    Returns a callable that stops the watching.
    """
    stopped = threading.Event()

    def poll() -> None:
        offset, metrics = 0, None
        while not stopped.wait(every) and alive():
            if metrics is None:
                found = list(output_dir.glob("*/metrics.jsonl"))
                if not found:
                    continue
                metrics = found[0]
            with open(metrics, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            end = data.rfind(b"\n") + 1
            offset += end
            for line in data[:end].splitlines():
                record = json.loads(line)
                if record.get("kind") == "train":
                    side.record(int(record["iter"]))

    threading.Thread(target=poll, daemon=True).start()
    return stopped.set


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _wait_for(side: Side, pid: int, iteration: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while side.last() < iteration:
        if not _alive(pid):
            raise RuntimeError(f"{side.name}: the process ended before iteration {iteration}; "
                               f"run it by hand to see why: {side.command or '(see the script)'}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{side.name}: no iteration {iteration} within {timeout:.0f} s of its start")
        time.sleep(0.01)


def _ends_since(side: Side, since: float) -> int:
    with side.lock:
        return sum(1 for _, t in side.seen if t >= since)


SETTLE_S = 0.3
"""Iterations that end this soon after a thaw are not counted, on every side alike: what
a process does the moment it is let go (a Textual app draws the frame that fell due while
it was frozen; every process finds its caches cold) is the pause's doing, not its own."""


def interleave(sides: list[Side], warm: int, slice_s: float, rounds: int, timeout: float = 900.0) -> dict:
    """Start each side, warm it up to iteration ``warm``, then give the sides turns.

    Returns per-side totals, the slices, and how the processes were held.
    """
    freezers: dict[int, Freezer] = {}
    pids: dict[int, int] = {}
    stops: list[Callable[[], None]] = []
    slices: list[Slice] = []
    try:
        for index, side in enumerate(sides):
            pid, stop = side.start(side)
            stops.append(stop)
            pids[index] = pid
            freezers[index] = Freezer(side.name, pid, side.allow_signals)
            _wait_for(side, pid, warm, timeout)
            freezers[index].freeze()
        order = list(enumerate(sides))
        for round_ in range(rounds):
            for index, side in order if round_ % 2 == 0 else order[::-1]:
                freezer = freezers[index]
                before = side.probe() if side.probe else {}
                freezer.thaw()
                began = time.perf_counter()
                time.sleep(slice_s)
                # A turn measures between two iteration ends: on a slow machine (or with a
                # sparse log) it runs on until it holds two, up to ten times its length.
                while _ends_since(side, began + SETTLE_S) < 2 and time.perf_counter() - began < 10 * slice_s:
                    time.sleep(0.05)
                freezer.freeze()
                ended = time.perf_counter()
                after = side.probe() if side.probe else {}
                # The iterations seen during the turn (a line or record is timed when this
                # process reads it: at once from a pipe, within 20 ms when polled).
                with side.lock:
                    inside = [(i, t) for i, t in side.seen if began + SETTLE_S <= t <= ended]
                if len(inside) < 2:
                    ended_why = "" if _alive(pids[index]) else " (its process has ended)"
                    raise RuntimeError(f"{side.name}: fewer than two iterations in a {10 * slice_s:.0f} s turn{ended_why}")
                (i0, t0), (i1, t1) = inside[0], inside[-1]
                grown = {key: after[key] - before.get(key, 0.0) for key in after}
                slices.append(Slice(side.name, round_, t1 - t0, i1 - i0, ended - began, grown, side.group))
    finally:
        # Thawed first: a frozen process would hold its kill until then.
        for freezer in freezers.values():
            try:
                freezer.thaw()
            except (OSError, RuntimeError):
                pass
        for stop in stops:
            try:
                stop()
            except Exception:  # noqa: BLE001 - clean up every side whatever one of them did
                pass
        for freezer in freezers.values():
            freezer.kill()
            freezer.release()
    return {
        "slices": slices,
        "held_by": sorted({f.kind for f in freezers.values()}),
    }


def cost(slices: list[Slice], side: str, rounds: set[int] | None = None) -> float:
    """Seconds per iteration of ``side``: its total time over its total iterations."""
    mine = [s for s in slices if s.side == side and (rounds is None or s.round in rounds)]
    return sum(s.seconds for s in mine) / sum(s.iterations for s in mine)


def ratio(slices: list[Slice], reference: str, other: str, resamples: int = 2000, seed: int = 0) -> dict:
    """``other``'s throughput over ``reference``'s: the median over rounds, and pooled.

    Each round of each group gives one ratio from its two neighbouring turns. The headline
    is their median: this VM has bursts of a few seconds in which a neighbour takes a third
    or more of the machine, and a burst that lands on one side's turn moves that round's
    ratio by far more than the effect measured; the median holds against a few such
    rounds, where the pooled ratio (all of a side's time over all of its iterations)
    moves with each of them. Both come with a 90% bootstrap interval, resampled the way
    the data came about: groups (sets of fresh processes) first, then rounds within each
    group drawn, whole. With one group this is the interval over rounds alone, which
    cannot see how much a figure owes to the particular processes that made it; fresh
    processes on this VM differ by a few percent, so the overhead rows run several groups.
    """
    totals: dict[tuple[int, int], dict[str, list[float]]] = {}
    for s in slices:
        if s.side in (reference, other):
            key = (s.group, s.round)
            entry = totals.setdefault(key, {reference: [0.0, 0], other: [0.0, 0]})[s.side]
            entry[0] += s.seconds
            entry[1] += s.iterations

    def pooled(keys: list[tuple[int, int]]) -> float:
        ref = sum(totals[k][reference][0] for k in keys) / sum(totals[k][reference][1] for k in keys)
        oth = sum(totals[k][other][0] for k in keys) / sum(totals[k][other][1] for k in keys)
        return ref / oth

    keys = sorted(totals)
    per_round = {k: pooled([k]) for k in keys}
    by_group: dict[int, list[tuple[int, int]]] = {}
    for key in keys:
        by_group.setdefault(key[0], []).append(key)
    groups = sorted(by_group)
    rng = random.Random(seed)
    picks = []
    for _ in range(resamples):
        pick: list[tuple[int, int]] = []
        for group in (rng.choice(groups) for _ in groups):
            pick.extend(rng.choice(by_group[group]) for _ in by_group[group])
        picks.append(pick)

    def interval(statistic) -> list[float]:
        draws = sorted(statistic(pick) for pick in picks)
        return [draws[int(0.05 * resamples)], draws[int(0.95 * resamples) - 1]]

    def median(pick: list[tuple[int, int]]) -> float:
        return statistics.median(per_round[k] for k in pick)

    return {
        "ratio": median(keys),
        "interval_90": interval(median),
        "pooled_ratio": pooled(keys),
        "pooled_interval_90": interval(pooled),
        "per_round": sorted(round(value, 3) for value in per_round.values()),
        "per_group": [round(median(by_group[g]), 3) for g in groups],
        "rounds": len(keys),
        "groups": len(groups),
    }
