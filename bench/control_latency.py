"""Control latency: from a Pause / SetLR command to its effect, in iterations and ms.

An in-process ``Trainer`` (tiny model, sample data) trains while this script sends
``Pause`` (then ``Resume``) and ``SetLR`` at random moments inside iterations. A hook
stamps when every iteration left the boundary and records the LR each step used; events carry
the engine's own timestamp (``Event.time``, stamped when the engine publishes).

- iterations late: iterations that *started* after the command was sent but before it
  took effect (target: 0, always -- the effect lands at the next iteration boundary);
- ms to effect: ``StateChanged(PAUSED).time`` / ``LRChanged.time`` minus the send time,
  i.e. the rest of the iteration that was running plus the boundary itself;
- ms to listener: when a subscriber (the UI's bridge sits in the same place) got the
  event.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path

import common

from cockpit.config import load_config
from cockpit.engine.commands import Pause, Resume, SetLR
from cockpit.engine.events import LRChanged, LRSource, RunState, StateChanged
from cockpit.engine.hooks import Hook
from cockpit.diagnostics.hook import DiagnosticsHook
from cockpit.engine.trainer import Trainer

TRIALS = 5 if common.QUICK else 20


class Stamps(Hook):
    """When each iteration left the boundary, and the LR its optimizer step used."""

    def __init__(self) -> None:
        self.starts: list[tuple[int, float]] = []
        self.lrs: dict[int, float] = {}
        self.progress = threading.Event()

    def before_step(self, trainer):
        self._before = time.time()

    def after_step(self, trainer, outcome):
        # A command is too late once the loop has left the boundary (commands drained) and
        # started loading the batch: that moment is before_step's time minus the data
        # time. (after_step's time minus iter_time would be shifted by the hooks that run
        # before this one -- the eval-mode probe takes tens of ms every 100 iterations.)
        self.starts.append((outcome.iter, self._before - outcome.data_time))
        self.lrs[outcome.iter] = outcome.lr
        self.progress.set()


class Waiter:
    """Listener that hands the next matching event (with its arrival time) to the script."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[object, float]] = []

    def __call__(self, event) -> None:
        with self.cond:
            self.events.append((event, time.time()))
            self.cond.notify_all()

    def wait_for(self, match, after: int, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for event, arrived in self.events[after:]:
                    if match(event):
                        return event, arrived
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no effect observed")
                self.cond.wait(left)


def started_between(stamps: Stamps, t0: float, before_iter: int) -> int:
    return sum(1 for it, t in stamps.starts if t > t0 and it <= before_iter)


def main() -> None:
    rng = random.Random(0)
    pause, lr = {"iters_late": [], "ms": [], "ms_listener": []}, {"iters_late": [], "ms": [], "ms_listener": []}
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        # No StepLR decay inside the run: every step after a SetLR must use exactly that LR.
        items = common.overrides(Path(tmp), "tiny", 100_000) + ["optim.step_size=100000"]
        config = load_config(common.SAMPLE, items)
        stamps, waiter = Stamps(), Waiter()
        trainer = Trainer(config, headless=False, hooks=[stamps, DiagnosticsHook()])
        trainer.subscribe(waiter)
        trainer.start()
        try:
            while len(stamps.lrs) < 5:
                stamps.progress.wait(60)
                stamps.progress.clear()
            iter_ms = []
            for trial in range(TRIALS):
                # A random moment inside an iteration (they take ~150 ms on the tiny model).
                time.sleep(rng.uniform(0.0, 0.3))
                mark = len(waiter.events)
                sent = time.time()
                trainer.send(Pause(reason="bench"))
                event, arrived = waiter.wait_for(lambda e: isinstance(e, StateChanged) and e.state is RunState.PAUSED, mark)
                pause["iters_late"].append(started_between(stamps, sent, event.iter))
                pause["ms"].append(1000 * (event.time - sent))
                pause["ms_listener"].append(1000 * (arrived - sent))
                mark = len(waiter.events)
                trainer.send(Resume())
                waiter.wait_for(lambda e: isinstance(e, StateChanged) and e.state is RunState.RUNNING, mark)

                time.sleep(rng.uniform(0.0, 0.3))
                target = 0.004 if trial % 2 == 0 else 0.003
                mark = len(waiter.events)
                sent = time.time()
                trainer.send(SetLR(lr=target))
                event, arrived = waiter.wait_for(lambda e: isinstance(e, LRChanged) and e.source is LRSource.USER, mark)
                # The first step that ran with the new LR must be the first one that started
                # after the change was applied.
                deadline = time.monotonic() + 60
                while event.iter + 1 not in stamps.lrs and time.monotonic() < deadline:
                    stamps.progress.wait(1)
                    stamps.progress.clear()
                used_old = int(abs(stamps.lrs[event.iter + 1] - target) > 1e-12)
                lr["iters_late"].append(started_between(stamps, sent, event.iter) + used_old)
                lr["ms"].append(1000 * (event.time - sent))
                lr["ms_listener"].append(1000 * (arrived - sent))
            starts = [t for _, t in stamps.starts]
            iter_ms = [1000 * (b - a) for a, b in zip(starts, starts[1:])]
        finally:
            trainer.close(timeout=60, save=False)

    def describe(values: dict) -> dict:
        return {
            "max_iters_late": max(values["iters_late"]),
            "median_ms": common.summary(values["ms"])["median"],
            "max_ms": max(values["ms"]),
            "max_ms_listener": max(values["ms_listener"]),
        }

    common.emit(
        {
            "bench": "control_latency",
            "trials": TRIALS,
            "pause": describe(pause),
            "set_lr": describe(lr),
            "median_iter_ms": common.summary(iter_ms)["median"],
        }
    )


if __name__ == "__main__":
    main()
