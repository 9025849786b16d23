"""Cockpit overhead with the Textual app running and drawing, against ``--headless``.

``cockpit run CONFIG`` (no ``--headless``) runs in a real terminal: a detached tmux
session of 160 x 48 (the grid layout: every pane on screen), so Textual really renders
and tmux really parses every frame; without tmux, a pseudo-terminal of that size whose
reader thread drains it as an emulator would. Both on the tiny model with
``run.log_every = 1`` (a record, a redraw request and a headless line every step: the
worst case for the front-ends).

Two controls run ``cockpit run --headless`` with the same settings: one started in the
same kind of terminal (a tmux session of the same size, as a user who keeps a headless
run in tmux would), and one started directly by this script with its output on a pipe.
The target figure is the TUI against the first -- the cockpit's own cost; the second is
printed beside it because on this VM *any* run started in a tmux pane trains more slowly
than the same run started from here (~0.90-0.97), with the UI out of the picture.

Iteration times of runs in a terminal come from the run directory's ``metrics.jsonl``
(flushed per record), polled every 50 ms; the direct run's from its lines. Per-iteration
cost is measured between two records so start-up cancels (see
``common.timed_iterations``). The UI thread's cost is the CPU time of the process's main
thread (where Textual's event loop runs; the trainer and listeners are other threads) over
the same window, from /proc/PID/task/*/stat: its share of one core; and the terminal's:
the tmux server's share of a core (or the bytes written to the pseudo-terminal).

This VM's own speed wanders by +-25% over minutes (a fixed pure-Python loop, nothing else
running: 193-308 ms), as large as the effect measured. So the runs come in blocks of
three with the TUI between its two controls, the controls' order mirrored every other
block (a linear drift cancels), and each ratio is of the medians over all runs; each
side's range is printed beside it.
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
MARKS = (10, 70) if common.QUICK else (10, 100)
BLOCKS = 1 if common.QUICK else 4
"""Blocks of three runs: ``--headless`` started directly, the TUI, ``--headless`` in the same terminal."""
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


def _cockpit_cmd(output_dir: Path, marks: tuple[int, int], headless: bool = False) -> list[str]:
    items = common.overrides(output_dir, ARCH, marks[1] + 1000) + EVERY_STEP
    return common.COCKPIT + ["run", str(common.SAMPLE)] + (["--headless"] if headless else []) + common.set_args(items)


def run_cockpit_in_tmux(output_dir: Path, marks: tuple[int, int], headless: bool = False) -> dict:
    """The TUI (or ``--headless``, the control in the same kind of terminal) in a detached
    tmux session of COLUMNS x ROWS."""
    session = f"cockpit-bench-{os.getpid()}-{output_dir.name}"
    command = "exec " + " ".join(shlex.quote(part) for part in _cockpit_cmd(output_dir, marks, headless))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(COLUMNS), "-y", str(ROWS), command],
                   cwd=common.REPO, check=True, env=dict(os.environ, TERM="xterm-256color"))
    try:
        pid, server = (int(part) for part in subprocess.run(
            ["tmux", "list-panes", "-t", session, "-F", "#{pane_pid} #{pid}"], capture_output=True, text=True, check=True
        ).stdout.split()[:2])
        # Alive while the pane's process is (exec: it is the cockpit). Not `tmux has-session`:
        # a tmux client spawned per poll cost the machine more CPU than the cockpit's UI.
        return _timed_window(pid, lambda: os.path.exists(f"/proc/{pid}"), output_dir, marks, written=None,
                             terminal_pid=server)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def run_cockpit_in_pty(output_dir: Path, marks: tuple[int, int], headless: bool = False) -> dict:
    """The TUI (or ``--headless``) in a pseudo-terminal of COLUMNS x ROWS, drained by a reader thread."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
    proc = subprocess.Popen(_cockpit_cmd(output_dir, marks, headless), cwd=common.REPO, stdin=slave, stdout=slave, stderr=slave,
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
                  timeout: float = 600.0, terminal_pid: int | None = None) -> dict:
    """Time the run between two iterations (from metrics.jsonl); CPU per thread over that window."""
    seen: dict[int, float] = {}
    cpu: dict[int, dict[str, float]] = {}
    terminal_cpu: dict[int, float] = {}
    bytes_at: dict[int, int] = {}
    offset = 0
    metrics = None
    deadline = time.monotonic() + timeout
    while marks[1] not in seen and time.monotonic() < deadline and alive():
        # 20 polls a second: +-25 ms on a window of ~10 s, and no CPU worth measuring taken
        # from the run (the headless side blocks on its pipe and takes none).
        time.sleep(0.05)
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
                if terminal_pid is not None:
                    terminal_cpu[record["iter"]] = sum(common.cpu_seconds_by_thread(terminal_pid).values())
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
        "terminal_cpu_share": (terminal_cpu[hi] - terminal_cpu[lo]) / wall if terminal_cpu else None,
    }


def main() -> None:
    terminal = "tmux" if shutil.which("tmux") else "pty"
    in_terminal = run_cockpit_in_tmux if terminal == "tmux" else run_cockpit_in_pty
    direct_cost, ui_runs, control_runs = [], [], []
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:

        def direct(run: int) -> None:
            out = Path(tmp) / f"direct{run}"
            times = common.timed_iterations(
                common.COCKPIT + ["run", str(common.SAMPLE), "--headless"]
                + common.set_args(common.overrides(out, ARCH, MARKS[1] + 1000) + EVERY_STEP),
                MARKS,
            )
            direct_cost.append(common.per_iteration(times, MARKS))

        def tui(run: int) -> None:
            ui_runs.append(in_terminal(Path(tmp) / f"ui{run}", MARKS))

        def headless_in_terminal(run: int) -> None:
            control_runs.append(in_terminal(Path(tmp) / f"control{run}", MARKS, headless=True))

        run = 0
        for block in range(BLOCKS):
            # The TUI between its two controls, their order mirrored every other block.
            order = (direct, tui, headless_in_terminal) if block % 2 == 0 else (headless_in_terminal, tui, direct)
            for side in order:
                side(run)
                run += 1
    ui_cost = [r["per_iter"] for r in ui_runs]
    control_cost = [r["per_iter"] for r in control_runs]
    terminal_cpu = [r["terminal_cpu_share"] for r in ui_runs if r["terminal_cpu_share"] is not None]
    kb = [r["terminal_kb_per_s"] for r in ui_runs if r["terminal_kb_per_s"] is not None]
    median = statistics.median
    common.emit(
        {
            "bench": "ui_overhead",
            "arch": ARCH,
            "window": list(MARKS),
            "log_every": 1,
            "ratio": median(control_cost) / median(ui_cost),
            "ratio_vs_direct": median(direct_cost) / median(ui_cost),
            "terminal_launch_ratio": median(direct_cost) / median(control_cost),
            "runs_per_side": len(ui_cost),
            "headless_in_terminal_ms_per_iter": 1000 * median(control_cost),
            "headless_direct_ms_per_iter": 1000 * median(direct_cost),
            "cockpit_ui_ms_per_iter": 1000 * median(ui_cost),
            "ms_ranges": {
                "headless_in_terminal": [1000 * min(control_cost), 1000 * max(control_cost)],
                "headless_direct": [1000 * min(direct_cost), 1000 * max(direct_cost)],
                "cockpit_ui": [1000 * min(ui_cost), 1000 * max(ui_cost)],
            },
            "ui_thread_cpu_share": median(r["ui_cpu_share"] for r in ui_runs),
            "ui_thread_cpu_share_max": max(r["ui_cpu_share"] for r in ui_runs),
            "terminal_cpu_share": median(terminal_cpu) if terminal_cpu else None,
            "process_cpu_share": median([r["process_cpu_share"] for r in ui_runs]),
            "terminal_kb_per_s": median(kb) if kb else None,
            "terminal": f"{COLUMNS}x{ROWS} {terminal}",
        }
    )


if __name__ == "__main__":
    main()
