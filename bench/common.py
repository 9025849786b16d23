"""Shared helpers for the benchmark scripts: paths, run overrides, timed subprocesses.

Not a benchmark itself. Every script in ``bench/`` prints one JSON line on stdout; the
helpers here keep their run settings identical so cockpit and the bare loop are compared
on the same recipe.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data" / "shapes.toml"
PYTHON = sys.executable
COCKPIT = [PYTHON, "-m", "cockpit"]
QUICK = os.environ.get("COCKPIT_BENCH_QUICK") == "1"
"""Set by ``run_all.py --quick``: fewer repeats and shorter windows, for development."""

# The lesson's recipe (SGD lr 0.005, StepLR step 3 x0.1 per epoch, no warm-up) for both
# sides, so the two loops follow the same schedule. Periodic evaluation is off: it is not
# per-iteration work and the bare loop has none. The epoch-end checkpoint, the NaN-rewind
# snapshot and the eval-mode probe stay on: they are what cockpit costs per iteration.
RECIPE = [
    "optim.lr=0.005",
    "optim.warmup_iters=0",
    "optim.step_size=3",
    "optim.gamma=0.1",
    "eval.every_epochs=0",
    "run.log_every=10",
    "run.epochs=1000",
    # torch's own default thread count, stated: cockpit's "auto" would drop a thread when the
    # machine is busy while the bare loop keeps torch's default, and the overhead ratios
    # would measure the machine's load instead of cockpit (bench/contention.py covers auto).
    f"run.threads={int(os.environ.get('OMP_NUM_THREADS') or 0) or len(os.sched_getaffinity(0))}",
]

ITER_LINE = re.compile(r"^it (\d+)[/ ]")


def overrides(output_dir: Path, arch: str, max_iters: int) -> list[str]:
    return RECIPE + [f"run.output_dir={output_dir}", f"model.arch={arch}", f"run.max_iters={max_iters}"]


def set_args(items: list[str]) -> list[str]:
    args: list[str] = []
    for item in items:
        args += ["--set", item]
    return args


def emit(record: dict) -> None:
    """The one JSON line a benchmark prints."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def timed_iterations(cmd: list[str], marks: tuple[int, int], timeout: float = 600.0, env: dict | None = None) -> dict[int, float]:
    """Run ``cmd``; note when each ``it N`` line arrives; kill it once ``marks[1]`` is seen.

    Start-up, pre-flight and whatever follows the last mark (final evaluation, checkpoint)
    fall outside the window, so (t[hi] - t[lo]) / (hi - lo) is the steady per-iteration
    cost including every hook, record and epoch boundary in between.
    """
    seen: dict[int, float] = {}
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env
    )
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.perf_counter()
            match = ITER_LINE.match(line)
            if match:
                seen[int(match.group(1))] = now
                if int(match.group(1)) >= marks[1]:
                    break
            if time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        proc.wait()
    missing = [m for m in marks if m not in seen]
    if missing:
        raise RuntimeError(f"{' '.join(cmd[:4])}...: no line for iteration(s) {missing}")
    return seen


def per_iteration(seen: dict[int, float], marks: tuple[int, int]) -> float:
    lo, hi = marks
    return (seen[hi] - seen[lo]) / (hi - lo)


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def cpu_seconds_by_thread(pid: int) -> dict[str, float]:
    """utime + stime of every thread of ``pid`` (Linux /proc), keyed "tid:comm"."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[f"{task.name}:{comm}"] = (int(fields[11]) + int(fields[12])) / ticks
    return out
