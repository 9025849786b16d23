"""Cockpit overhead with the Textual app running and drawing, and what the UI thread costs.

``cockpit run CONFIG`` (no ``--headless``) runs in a real pseudo-terminal of 200 x 50
(the grid layout: every pane on screen), so Textual really renders and writes frames; a
reader thread drains the terminal as an emulator would. Iteration times come from the
run directory's ``metrics.jsonl`` (flushed per record), polled every 10 ms. The bare loop
(``bench/bare_loop.py``, same recipe) alternates with it, on the tiny model. Per-iteration
cost is measured between two records so start-up cancels (see ``common.timed_iterations``).

The UI thread's cost is the CPU time of the process's main thread (where Textual's event
loop runs; the trainer and listeners are other threads) over the same window, from
/proc/PID/task/*/stat: its share of one core, and the bytes written to the terminal.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import tempfile
import termios
import threading
import time
from pathlib import Path

import common

ARCH = "tiny"
MARKS = (10, 70) if common.QUICK else (10, 130)
REPEATS = 1 if common.QUICK else 3
COLUMNS, ROWS = 200, 50


def _drain(fd: int, counter: list[int]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        counter[0] += len(chunk)


def run_cockpit_in_pty(output_dir: Path, marks: tuple[int, int], timeout: float = 600.0) -> dict:
    """Time ``cockpit run`` (the TUI) between two iterations; CPU per thread over that window."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
    cmd = common.COCKPIT + ["run", str(common.SAMPLE)] + common.set_args(common.overrides(output_dir, ARCH, marks[1] + 1000))
    proc = subprocess.Popen(cmd, cwd=common.REPO, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    written = [0]
    reader = threading.Thread(target=_drain, args=(master, written), daemon=True)
    reader.start()
    seen: dict[int, float] = {}
    cpu: dict[int, dict[str, float]] = {}
    bytes_at: dict[int, int] = {}
    offset = 0
    metrics = None
    deadline = time.monotonic() + timeout
    try:
        while marks[1] not in seen and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
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
            now = time.perf_counter()
            for line in data[:end].splitlines():
                record = json.loads(line)
                if record.get("kind") == "train" and record["iter"] in marks:
                    seen[record["iter"]] = now
                    cpu[record["iter"]] = common.cpu_seconds_by_thread(proc.pid)
                    bytes_at[record["iter"]] = written[0]
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    missing = [m for m in marks if m not in seen]
    if missing:
        raise RuntimeError(f"cockpit (TUI): no record for iteration(s) {missing}")
    lo, hi = marks
    wall = seen[hi] - seen[lo]
    main_key = next(k for k in cpu[hi] if k.startswith(f"{proc.pid}:"))
    by_thread = {k: cpu[hi][k] - cpu[lo].get(k, 0.0) for k in cpu[hi]}
    return {
        "per_iter": wall / (hi - lo),
        "ui_cpu_share": by_thread[main_key] / wall,
        "process_cpu_share": sum(by_thread.values()) / wall,
        "terminal_kb_per_s": (bytes_at[hi] - bytes_at[lo]) / 1024 / wall,
    }


def main() -> None:
    bare_cost, ui_runs, pairs = [], [], []
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        for rep in range(REPEATS):
            out = Path(tmp) / f"ui{rep}"
            bare = common.timed_iterations(
                [common.PYTHON, str(common.REPO / "bench" / "bare_loop.py"), str(common.SAMPLE)]
                + common.set_args(common.overrides(out, ARCH, MARKS[1] + 1000)),
                MARKS,
            )
            b = common.per_iteration(bare, MARKS)
            ui = run_cockpit_in_pty(out, MARKS)
            bare_cost.append(b)
            ui_runs.append(ui)
            pairs.append(b / ui["per_iter"])
    ui_cost = [r["per_iter"] for r in ui_runs]
    # Interference from other processes only ever adds time: the best run of each side is
    # the least disturbed estimate of its own cost.
    ratio = min(bare_cost) / min(ui_cost)
    common.emit(
        {
            "bench": "ui_overhead",
            "arch": ARCH,
            "window": list(MARKS),
            "ratio": ratio,
            "pair_ratios": pairs,
            "bare_ms_per_iter": 1000 * min(bare_cost),
            "cockpit_ui_ms_per_iter": 1000 * min(ui_cost),
            "ui_thread_cpu_share": min(r["ui_cpu_share"] for r in ui_runs),
            "ui_thread_cpu_share_max": max(r["ui_cpu_share"] for r in ui_runs),
            "process_cpu_share": statistics.median([r["process_cpu_share"] for r in ui_runs]),
            "terminal_kb_per_s": statistics.median([r["terminal_kb_per_s"] for r in ui_runs]),
            "terminal": f"{COLUMNS}x{ROWS} pty",
        }
    )


if __name__ == "__main__":
    main()
