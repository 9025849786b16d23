"""Engine overhead: cockpit's headless engine against a bare torchvision loop, in one process.

Both sides train the same model from the same config (data, batch size, augmentation
probabilities, SGD recipe, seed, ``num_workers``, torch threads). The SGD kernel differs:
the engine's is torch's fused one (``cockpit/engine/optimizer.py``), the bare loop keeps
``torch.optim.SGD``'s default, as the lesson writes it, so the ratio credits cockpit with
the faster kernel (~0.6 ms of a ~100 ms ``tiny`` step; bench/notes.md). The engine is the one
``cockpit run --headless`` builds (``cockpit.assembly``: the trainer with its built-in
hooks, the diagnostics, the run directory's writer, the headless printer and its log
file); the bare loop is ``bench/bare_loop.py``'s. They live in **one process** and take
turns of a few seconds, ABBA: the engine is held by its own ``Pause`` command (it blocks
on a condition at the next iteration boundary, as when the user presses ``p``) and the
bare loop by an event it checks between iterations, so the side not running costs
nothing. Each round gives one ratio from its two turns: whole iterations over time,
timed in the thread that trains (the engine's by a hook, which adds one Python call a
step, every iteration whatever ``log_every``), the iterations that end in the first 0.3 s
of a turn left out.

Why one process: run as two processes (as this bench was until 2026-12-01, taking turns
under the cgroup freezer), fresh processes on this VM differed by as much as the effect --
pairs of the same code read 0.944, 1.008 and 0.987 in one run -- and regenerations half an
hour apart moved the figure by 3-4%. In one process both sides share the allocator, the
OpenMP threads' placement and the address layout, so what differs is the code.

Three processes (groups) run one after another, each its own engine and bare loop; the
figure is the median over all rounds of the engine's throughput over the bare loop's
(``interleave.ratio``: the median holds against the few rounds a neighbour's burst lands
on), with a 90% bootstrap interval (processes, then rounds, resampled) and the ratio
pooled over all turns beside it.

What one process still shares, and how it is accounted for:
- the engine's other threads (event bus, run-directory writer, headless printer, its
  OpenMP workers) may still be busy when the bare loop's turn begins. A 0.2 s gap comes
  before every turn, and the CPU they take from the start of a bare loop's turn to its
  hold is reported as a share of that span (``engine_threads_cpu_share``; the bare loop's
  during the engine's turns beside it): it would count against the bare loop;
- Python's garbage collector walks the whole process: a collection that falls in the bare
  loop's turn also walks the engine's objects. That favours cockpit by at most what its
  objects add to collections, which the UI notes measured at 0.13-0.58% of the wall
  (``cockpit/ui/long_lived.py``; the headless engine holds far fewer objects than the app).

    python bench/engine_overhead.py              # every model, a JSON line
    python bench/engine_overhead.py --group ARCH N OUTPUT_DIR   # one process's turns (internal)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import common
import interleave

PLANS = {
    "tiny": (10, 20, 4.0 if common.QUICK else 6.0, 3 if common.QUICK else 8, 1 if common.QUICK else 3),
    # 8 rounds: at 3.5-4 s an iteration a turn holds ~4 iterations, and one epoch-end
    # checkpoint or one noisy turn moves a process's median by a percent or more.
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        1, 2, 10.0 if common.QUICK else 16.0, 2 if common.QUICK else 8, 1 if common.QUICK else 3,
    ),
}
"""Per model: log_every, warm-up iterations, seconds a turn, rounds, processes."""


class Marks:
    """When each iteration of one side ended (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[int, float]] = []

    def record(self, iteration: int) -> None:
        with self.lock:
            self.seen.append((iteration, time.perf_counter()))

    def last(self) -> int:
        with self.lock:
            return self.seen[-1][0] if self.seen else -1

    def between(self, start: float, end: float) -> list[tuple[int, float]]:
        with self.lock:
            return [(i, t) for i, t in self.seen if start <= t <= end]


def _thread_cpu(tids) -> float:
    """CPU seconds the threads ``tids`` of this process have run (``schedstat``: nanoseconds,
    where ``stat``'s clock ticks are 10 ms)."""
    total = 0
    for tid in tids:
        try:
            total += int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _threads() -> set[int]:
    return {int(tid) for tid in os.listdir("/proc/self/task")}


def run_group(arch: str, log_every: int, warm: int, slice_s: float, rounds: int, group: int, output_dir: Path) -> dict:
    """One process's turns: build both sides, warm them up, alternate. Returns the slices."""

    from bare_loop import BareLoop
    from cockpit.assembly import attach_listeners, watched_hooks
    from cockpit.config import load_config
    from cockpit.engine.commands import Pause, Resume
    from cockpit.engine.events import RunState
    from cockpit.engine.headless import HeadlessPrinter
    from cockpit.engine.hooks import Hook
    from cockpit.engine.session import RunRequest
    from cockpit.engine.trainer import Trainer
    from cockpit.runfiles import layout

    from cockpit.engine.host_memory import keep_freed_memory

    # As `cockpit run` does before any thread starts; both sides share the process, so the
    # bare loop trains under the same allocator settings (cockpit/engine/host_memory.py).
    keep_freed_memory()
    items = common.overrides(output_dir, arch, 1_000_000) + [f"run.log_every={log_every}"]
    config = load_config(common.SAMPLE, items)
    engine_side, bare_side = Marks(), Marks()

    class Clock(Hook):
        """Notes when each iteration ends, in the trainer's thread."""

        def after_step(self, trainer, outcome) -> None:
            engine_side.record(outcome.iter)

    # Each side's threads: those that appear while it is built and while it alone runs (the
    # engine's listener threads start with the trainer and its printer), for the CPU one side
    # takes during the other's turns.
    before = _threads()
    # As cockpit.assembly.make_trainer and engine.session.run_headless build it, plus the clock.
    request = RunRequest(config=config, config_path=common.SAMPLE)
    trainer = attach_listeners(
        Trainer(config, headless=True, hooks=watched_hooks(request) + [Clock()], dist=request.dist)
    )
    devnull = open(os.devnull, "w")
    printer = HeadlessPrinter(devnull, log_file=trainer.run_dir / layout.LOG)
    trainer.subscribe(printer)

    loop = BareLoop(config)
    go, idle, failed = threading.Event(), threading.Event(), []

    def train_bare() -> None:
        try:
            for iteration, _, _ in loop.steps():
                bare_side.record(iteration)
                if not go.is_set():
                    idle.set()
                    go.wait()
                    idle.clear()
        except BaseException as error:  # noqa: BLE001 - reported by the turn that waits on it
            failed.append(repr(error))
            idle.set()

    bare_thread = threading.Thread(target=train_bare, name="bare-loop", daemon=True)

    def wait_for(predicate, what: str, timeout: float = 900.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if failed or trainer.state.is_terminal:
                raise RuntimeError(f"{what}: {failed[0] if failed else trainer.failure_reason}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout:.0f} s")
            time.sleep(0.01)

    # The turns' bodies: let the side go, and hold it again at its next boundary. A turn
    # ends when the side is told to stop; the iteration then under way ends after it and
    # is not counted.
    def let_engine_go() -> None:
        trainer.send(Resume())

    def hold_engine() -> None:
        trainer.send(Pause(reason="bench"))
        wait_for(lambda: trainer.state is RunState.PAUSED, "the engine did not pause")

    def let_bare_go() -> None:
        go.set()

    def hold_bare() -> None:
        go.clear()
        wait_for(idle.is_set, "the bare loop did not stop")
        if failed:
            raise RuntimeError(f"the bare loop failed: {failed[0]}")

    turns = {"cockpit": (engine_side, let_engine_go, hold_engine), "bare": (bare_side, let_bare_go, hold_bare)}
    slices: list[interleave.Slice] = []
    try:
        trainer.start()
        wait_for(lambda: engine_side.last() >= warm, "engine warm-up")
        hold_engine()
        engine_tids = _threads() - before
        go.set()
        before = _threads()
        bare_thread.start()
        wait_for(lambda: bare_side.last() >= warm, "bare loop warm-up")
        hold_bare()
        bare_tids = _threads() - before
        tids = {"cockpit": engine_tids, "bare": bare_tids}
        order = ["cockpit", "bare"] if group % 2 == 0 else ["bare", "cockpit"]
        for round_ in range(rounds):
            for name in order if round_ % 2 == 0 else order[::-1]:
                side, let_go, hold = turns[name]
                time.sleep(0.2)  # the other side's last records written before this turn starts
                others = tids["cockpit" if name == "bare" else "bare"]
                span_began, cpu_before = time.perf_counter(), _thread_cpu(others)
                let_go()
                began = time.perf_counter()
                time.sleep(slice_s)
                while len(side.between(began + interleave.SETTLE_S, time.perf_counter())) < 2:
                    if failed or trainer.state.is_terminal:
                        raise RuntimeError(f"{name}: {failed[0] if failed else trainer.failure_reason}")
                    if time.perf_counter() - began > 10 * slice_s:
                        raise RuntimeError(f"{name}: fewer than two iterations in a {10 * slice_s:.0f} s turn")
                    time.sleep(0.05)
                ended = time.perf_counter()
                hold()
                other_cpu, span = _thread_cpu(others) - cpu_before, time.perf_counter() - span_began
                (i0, t0), *_, (i1, t1) = side.between(began + interleave.SETTLE_S, ended)
                counters = {"other_side_cpu_s": other_cpu, "other_side_span_s": span}
                slices.append(interleave.Slice(name, round_, t1 - t0, i1 - i0, ended - began, counters, group))
    finally:
        trainer.close(save=False)
        printer.close()
        devnull.close()
    return {"slices": [asdict(s) for s in slices]}


def _share(turns: list[interleave.Slice]) -> float:
    return sum(s.counters["other_side_cpu_s"] for s in turns) / sum(s.counters["other_side_span_s"] for s in turns)


def measure(arch: str, log_every: int, warm: int, slice_s: float, rounds: int, groups: int, tmp: Path) -> dict:
    slices: list[interleave.Slice] = []
    for group in range(groups):
        output_dir = tmp / f"{arch}-{group}"
        command = [common.PYTHON, str(Path(__file__).resolve()), "--group", arch, str(group), str(output_dir)]
        done = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{arch}, process {group}: exit {done.returncode}: {done.stderr.strip()[-2000:]}")
        slices += [interleave.Slice(**s) for s in json.loads(done.stdout.strip().splitlines()[-1])["slices"]]
    figure = interleave.ratio(slices, "bare", "cockpit")
    bare_turns = [s for s in slices if s.side == "bare"]
    engine_turns = [s for s in slices if s.side == "cockpit"]
    return {
        **figure,
        "bare_ms_per_iter": 1000 * interleave.cost(slices, "bare"),
        "cockpit_ms_per_iter": 1000 * interleave.cost(slices, "cockpit"),
        "iterations_per_side": {name: sum(s.iterations for s in slices if s.side == name) for name in ("bare", "cockpit")},
        "turn_s": slice_s,
        "one_process": True,
        # CPU the engine's threads took while the bare loop had its turn (and the bare
        # loop's threads while the engine had its), as a share of the span it was counted over.
        "engine_threads_cpu_share": _share(bare_turns),
        "bare_thread_cpu_share": _share(engine_turns),
    }


def main() -> None:
    if sys.argv[1:2] == ["--group"]:
        arch, group, output_dir = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
        log_every, warm, slice_s, rounds, _ = PLANS[arch]
        print(json.dumps(run_group(arch, log_every, warm, slice_s, rounds, group, output_dir)), flush=True)
        return
    results = {}
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        for arch, plan in PLANS.items():
            results[arch] = measure(arch, *plan, Path(tmp))
    common.emit({"bench": "engine_overhead", "results": results})


if __name__ == "__main__":
    main()
