"""Cockpit overhead with the Textual app running and drawing, against ``--headless``.

``cockpit run CONFIG`` (no ``--headless``) runs in a real terminal: a detached tmux
session of 160 x 48 (the grid layout: every pane on screen), so Textual really renders
and tmux really parses every frame. On the tiny model with ``run.log_every = 1`` (a
record, a redraw request and a headless line every step: the worst case for the
front-ends).

The control runs ``cockpit run --headless`` with the same settings in the same kind of
terminal (a tmux session of the same size, as a user who keeps a headless run in tmux
would); the figure is the TUI's throughput over the control's: the cockpit's own cost.

They run interleaved (``bench/interleave.py``): three pairs of fresh processes (one with
``--quick``; a control and a cockpit each) are started and warmed up, then take turns of
a few seconds each while the others are frozen by the cgroup freezer (Textual must not
see a SIGSTOP: it takes the SIGCONT as a return from Ctrl+Z), a pair's two turns side by
side, so they see the same machine and the VM's drift of +-25% over minutes falls out of
the ratio. The figure is the median over every pair's rounds of the TUI's throughput
over the control's (``interleave.ratio``: fresh processes differ by a few percent on
this VM, so the interval resamples pairs, then rounds), the pooled ratio beside it.
Iteration times come from each run directory's ``metrics.jsonl`` (flushed per record),
polled every 20 ms by this script for both alike. The UI thread's cost is the CPU time
of the TUI's main thread (where Textual's event loop runs; the trainer and listeners are
other threads) over its turns, from /proc/PID/task/*/stat: its share of one core; and
the terminal's: the tmux server's share of a core over the same turns.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import common
import interleave

ARCH = "tiny"
WARM = 10
TURN_S = 4.0 if common.QUICK else 7.0
"""Long against the panes' frame interval (~3 s at 160 x 48), so a turn holds the frames
a running cockpit draws in that time: a thawed cockpit first draws the frame that fell due
while it was frozen, which the settling time (``interleave.SETTLE_S``) leaves out."""
ROUNDS = 3 if common.QUICK else 8
GROUPS = 1 if common.QUICK else 3
"""Sets of fresh processes (a control and a cockpit each), all alive at once and taking
turns: fresh processes on this VM differ by a few percent, as much as the effect, so the
figure pools several pairs (``interleave.ratio`` resamples pairs, then rounds)."""
COLUMNS, ROWS = 160, 48
EVERY_STEP = ["run.log_every=1"]


def _cockpit_cmd(output_dir: Path, headless: bool = False) -> list[str]:
    items = common.overrides(output_dir, ARCH, 1_000_000) + EVERY_STEP
    return common.COCKPIT + ["run", str(common.SAMPLE)] + (["--headless"] if headless else []) + common.set_args(items)


def in_tmux(output_dir: Path, headless: bool, group: int = 0) -> interleave.Side:
    """The TUI (or ``--headless``, the control in the same kind of terminal) in a detached
    tmux session of COLUMNS x ROWS."""
    session = f"cockpit-bench-{os.getpid()}-{output_dir.name}"
    found: dict[str, int] = {}

    def start(side: interleave.Side):
        command = "exec " + " ".join(shlex.quote(part) for part in _cockpit_cmd(output_dir, headless))
        side.command = command
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(COLUMNS), "-y", str(ROWS), command],
                       cwd=common.REPO, check=True, env=dict(os.environ, TERM="xterm-256color"))
        try:
            pid, server = (int(part) for part in subprocess.run(
                ["tmux", "list-panes", "-t", session, "-F", "#{pane_pid} #{pid}"], capture_output=True, text=True,
                check=True,
            ).stdout.split()[:2])
        except (subprocess.CalledProcessError, ValueError):
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            raise
        found.update(pid=pid, server=server)
        # Alive while the pane's process is (exec: it is the cockpit). Not `tmux has-session`:
        # a tmux client spawned per poll costs the machine more CPU than the cockpit's UI.
        stop_polling = interleave.poll_metrics(side, output_dir, lambda: os.path.exists(f"/proc/{pid}"))

        def stop() -> None:
            stop_polling()
            subprocess.run(["kill", "-9", str(pid)], capture_output=True)
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)

        return pid, stop

    def probe() -> dict[str, float]:
        if not found:
            return {}
        threads = common.cpu_seconds_by_thread(found["pid"])
        return {
            "ui_thread": sum(v for k, v in threads.items() if k.startswith(f"{found['pid']}:")),
            "process": sum(threads.values()),
            "tmux": sum(common.cpu_seconds_by_thread(found["server"]).values()),
        }

    name = "headless_in_terminal" if headless else "cockpit_ui"
    # The TUI must be held by the freezer; the headless control may fall back to signals,
    # but then the two are not held alike, so it is not allowed either.
    return interleave.Side(name, start, allow_signals=False, probe=probe, group=group)


def main() -> None:
    if not shutil.which("tmux"):
        raise SystemExit("ui_overhead: needs tmux (the TUI is measured in a real terminal)")
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        sides = [
            side
            for group in range(GROUPS)
            for side in (in_tmux(Path(tmp) / f"control{group}", True, group), in_tmux(Path(tmp) / f"ui{group}", False, group))
        ]
        done = interleave.interleave(sides, WARM, TURN_S, ROUNDS)
    slices = done["slices"]
    ui = [s for s in slices if s.side == "cockpit_ui"]
    turns = sum(s.turn_s for s in ui)

    def share(key: str) -> float:
        return sum(s.counters.get(key, 0.0) for s in ui) / turns

    against_terminal = interleave.ratio(slices, "headless_in_terminal", "cockpit_ui")
    common.emit(
        {
            "bench": "ui_overhead",
            "arch": ARCH,
            "log_every": 1,
            **against_terminal,
            "turn_s": TURN_S,
            "ms_per_iter": {name: 1000 * interleave.cost(slices, name) for name in ("headless_in_terminal", "cockpit_ui")},
            "iterations_per_side": {name: sum(s.iterations for s in slices if s.side == name)
                                    for name in ("headless_in_terminal", "cockpit_ui")},
            "ui_thread_cpu_share": share("ui_thread"),
            "process_cpu_share": share("process"),
            "terminal_cpu_share": share("tmux"),
            "terminal": f"{COLUMNS}x{ROWS} tmux",
            "held_by": done["held_by"],
        }
    )


if __name__ == "__main__":
    main()
