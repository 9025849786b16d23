"""Cockpit overhead with the Textual app running and drawing, against ``--headless``.

``cockpit run CONFIG`` (no ``--headless``) runs in a real terminal: a detached tmux
session of 160 x 48 (the grid layout: every pane on screen), so Textual really renders
and tmux really parses every frame; without tmux, a pseudo-terminal of that size whose
reader thread drains it as an emulator would. ``cockpit run --headless`` alternates with
it, both on the tiny model with ``run.log_every = 1`` (a record, a redraw request and a
headless line every step: the worst case for the front-ends). Iteration times of the TUI
come from the run directory's ``metrics.jsonl`` (flushed per record), polled every 10 ms;
the headless ones from its lines. Per-iteration cost is measured between two records so
start-up cancels (see ``common.timed_iterations``).

The UI thread's cost is the CPU time of the process's main thread (where Textual's event
loop runs; the trainer and listeners are other threads) over the same window, from
/proc/PID/task/*/stat: its share of one core, and the bytes written to the terminal.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shlex
import shutil
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
COLUMNS, ROWS = 160, 48
EVERY_STEP = ["run.log_every=1"]


def _drain(fd: int, counter: list[int]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        counter[0] += len(chunk)


def _cockpit_cmd(output_dir: Path, marks: tuple[int, int]) -> list[str]:
    items = common.overrides(output_dir, ARCH, marks[1] + 1000) + EVERY_STEP
    return common.COCKPIT + ["run", str(common.SAMPLE)] + common.set_args(items)


def run_cockpit_in_tmux(output_dir: Path, marks: tuple[int, int]) -> dict:
    """The TUI in a detached tmux session of COLUMNS x ROWS."""
    session = f"cockpit-bench-{os.getpid()}"
    command = "exec " + " ".join(shlex.quote(part) for part in _cockpit_cmd(output_dir, marks))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(COLUMNS), "-y", str(ROWS), command],
                   cwd=common.REPO, check=True, env=dict(os.environ, TERM="xterm-256color"))
    try:
        pid = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                                 text=True, check=True).stdout.split()[0])
        return _timed_window(pid, lambda: subprocess.run(["tmux", "has-session", "-t", session],
                                                          capture_output=True).returncode == 0,
                             output_dir, marks, written=None)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def run_cockpit_in_pty(output_dir: Path, marks: tuple[int, int]) -> dict:
    """The TUI in a pseudo-terminal of COLUMNS x ROWS, drained by a reader thread."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
    proc = subprocess.Popen(_cockpit_cmd(output_dir, marks), cwd=common.REPO, stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    written = [0]
    threading.Thread(target=_drain, args=(master, written), daemon=True).start()
    try:
        return _timed_window(proc.pid, lambda: proc.poll() is None, output_dir, marks, written)
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def _timed_window(pid: int, alive, output_dir: Path, marks: tuple[int, int], written: list[int] | None,
                  timeout: float = 600.0) -> dict:
    """Time the run between two iterations (from metrics.jsonl); CPU per thread over that window."""
    seen: dict[int, float] = {}
    cpu: dict[int, dict[str, float]] = {}
    bytes_at: dict[int, int] = {}
    offset = 0
    metrics = None
    deadline = time.monotonic() + timeout
    while marks[1] not in seen and time.monotonic() < deadline and alive():
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
                cpu[record["iter"]] = common.cpu_seconds_by_thread(pid)
                bytes_at[record["iter"]] = written[0] if written is not None else 0
    missing = [m for m in marks if m not in seen]
    if missing:
        raise RuntimeError(f"cockpit (TUI): no record for iteration(s) {missing}")
    lo, hi = marks
    wall = seen[hi] - seen[lo]
    main_key = next(k for k in cpu[hi] if k.startswith(f"{pid}:"))
    by_thread = {k: cpu[hi][k] - cpu[lo].get(k, 0.0) for k in cpu[hi]}
    return {
        "per_iter": wall / (hi - lo),
        "ui_cpu_share": by_thread[main_key] / wall,
        "process_cpu_share": sum(by_thread.values()) / wall,
        "terminal_kb_per_s": (bytes_at[hi] - bytes_at[lo]) / 1024 / wall if written is not None else None,
    }


def main() -> None:
    terminal = "tmux" if shutil.which("tmux") else "pty"
    run_tui = run_cockpit_in_tmux if terminal == "tmux" else run_cockpit_in_pty
    headless_cost, ui_runs, pairs = [], [], []
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        for rep in range(REPEATS):
            out = Path(tmp) / f"ui{rep}"
            headless = common.timed_iterations(
                common.COCKPIT + ["run", str(common.SAMPLE), "--headless"]
                + common.set_args(common.overrides(Path(tmp) / f"headless{rep}", ARCH, MARKS[1] + 1000) + EVERY_STEP),
                MARKS,
            )
            h = common.per_iteration(headless, MARKS)
            ui = run_tui(out, MARKS)
            headless_cost.append(h)
            ui_runs.append(ui)
            pairs.append(h / ui["per_iter"])
    ui_cost = [r["per_iter"] for r in ui_runs]
    # Interference from other processes only ever adds time: the best run of each side is
    # the least disturbed estimate of its own cost.
    ratio = min(headless_cost) / min(ui_cost)
    kb = [r["terminal_kb_per_s"] for r in ui_runs if r["terminal_kb_per_s"] is not None]
    common.emit(
        {
            "bench": "ui_overhead",
            "arch": ARCH,
            "window": list(MARKS),
            "log_every": 1,
            "ratio": ratio,
            "pair_ratios": pairs,
            "headless_ms_per_iter": 1000 * min(headless_cost),
            "cockpit_ui_ms_per_iter": 1000 * min(ui_cost),
            "ui_thread_cpu_share": min(r["ui_cpu_share"] for r in ui_runs),
            "ui_thread_cpu_share_max": max(r["ui_cpu_share"] for r in ui_runs),
            "process_cpu_share": statistics.median([r["process_cpu_share"] for r in ui_runs]),
            "terminal_kb_per_s": statistics.median(kb) if kb else None,
            "terminal": f"{COLUMNS}x{ROWS} {terminal}",
        }
    )


if __name__ == "__main__":
    main()
