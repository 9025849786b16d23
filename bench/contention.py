"""A busy machine: ``cockpit run --headless`` with one other process keeping one core busy.

Three runs of the ``tiny`` sample, headless, one after the other: the machine quiet with
``run.threads = "auto"``; then, with a spinning Python process started first (one core
kept busy), torch's default thread count (``run.threads`` = the usable cores, which is
what torch picks on its own) and ``run.threads = "auto"``. Each child runs without
``OMP_NUM_THREADS`` so torch's default is the real one. The figure is the per-iteration
cost over a window past start-up (see ``common.timed_iterations``); the spinner is
started before each run so ``auto``'s start-up sample sees it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import common

MARKS = (10, 70) if common.QUICK else (10, 130)


def spinner() -> subprocess.Popen:
    return subprocess.Popen([common.PYTHON, "-c", "while True: pass"])


def run(tmp: Path, label: str, threads: str, busy: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    items = common.overrides(tmp / label, "tiny", MARKS[1] + 1000) + [f"run.threads={threads}"]
    other = spinner() if busy else None
    try:
        if other is not None:
            time.sleep(1.0)  # let it take its core before the run samples the load
        seen = common.timed_iterations(common.COCKPIT + ["run", str(common.SAMPLE), "--headless"] + common.set_args(items), MARKS, env=env)
    finally:
        if other is not None:
            other.kill()
            other.wait()
    return common.per_iteration(seen, MARKS)


def main() -> None:
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        quiet = run(Path(tmp), "quiet", "auto", busy=False)
        default = run(Path(tmp), "default", str(cores), busy=True)
        auto = run(Path(tmp), "auto", "auto", busy=True)
    common.emit(
        {
            "bench": "contention",
            "cores": cores,
            "window": list(MARKS),
            "quiet_auto_ms_per_iter": 1000 * quiet,
            "busy_default_ms_per_iter": 1000 * default,
            "busy_auto_ms_per_iter": 1000 * auto,
            "slowdown_default": default / quiet,
            "slowdown_auto": auto / quiet,
        }
    )


if __name__ == "__main__":
    main()
