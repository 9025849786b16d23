"""Finding runs: the ``server.json`` a live run leaves in its folder, states, ``auto``.

A run started by ``cockpit run`` writes ``server.json`` into its run directory: the pid
(and the process's start time, so a recycled pid is not mistaken for the run), the
control socket's path when it has one (``--detach``), and when it started. A run's state
comes from that file and from ``events.jsonl``:

- ``finished`` / ``stopped`` / ``failed``: ``events.jsonl`` holds a ``finished`` event, and
  its outcome says which (``stopped``: by the user or a signal, before the end);
- ``running`` / ``paused``: no ``finished`` event and the process is alive; ``paused`` when
  its last state change was a pause;
- ``stale``: no ``finished`` event and the process is gone (killed, crashed, machine
  rebooted) -- or the run predates ``server.json`` and nothing says it lives.

Detached runs also register themselves in a per-user folder (see :func:`runtime_dir`), so
``cockpit attach auto`` finds them wherever their output directory is.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.runfiles import codec, layout
from cockpit.runfiles.jsonl import EVENT_SCHEMA, JsonlFile, iter_jsonl, read_json, write_json

SERVER_FILE = layout.SERVER
CONTROL_DIR = ".control"
SOCKET_NAME = "cockpit.sock"
SOCKET_PATH_LIMIT = 100
"""sun_path holds 108 bytes on Linux (104 on macOS); stay clear of both."""

RUNNING = "running"
PAUSED = "paused"
FINISHED = "finished"
STOPPED = "stopped"
FAILED = "failed"
STALE = "stale"
ALIVE = (RUNNING, PAUSED)
"""States of a run whose process is still there (attachable, worth tailing)."""
OUTPUT_DIRS_FILE = "output-dirs.txt"
"""In the per-user registry: the output folders runs were started in (for ``cockpit ls``)."""


class RunLookupError(Exception):
    """No run matches what was asked for; ``str()`` is a one-line reason."""


def runtime_dir() -> Path:
    """A private (0700) per-user folder: ``$XDG_RUNTIME_DIR/cockpit`` or ``/tmp/cockpit-UID``."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "cockpit" if base and Path(base).is_dir() else Path(f"/tmp/cockpit-{os.getuid()}")
    return private_dir(path)


def private_dir(path: Path) -> Path:
    """Create ``path`` as 0700, or check that an existing one is ours and nobody else's."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        # Someone else made it first (a squatter in /tmp): never put a socket there.
        raise PermissionError(f"{path} is not a folder owned by this user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def socket_path_for(run_dir: Path) -> Path:
    """Where a run's control socket goes: in the run dir, or a short path when that is too long."""
    run_dir = Path(run_dir).resolve()
    preferred = run_dir / CONTROL_DIR / SOCKET_NAME
    if len(os.fsencode(str(preferred))) <= SOCKET_PATH_LIMIT:
        private_dir(preferred.parent)
        return preferred
    digest = hashlib.sha1(os.fsencode(str(run_dir))).hexdigest()[:16]
    for base in (runtime_dir(), Path(f"/tmp/cockpit-{os.getuid()}")):
        candidate = base / "sockets" / f"{digest}.sock"
        if len(os.fsencode(str(candidate))) <= SOCKET_PATH_LIMIT:
            private_dir(candidate.parent)
            return candidate
    raise OSError(f"no short enough place for the control socket of {run_dir}")


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a recycled pid apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``start``, is the same process that started then)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) is all there is
    fields = text[text.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":
        return False  # exited, not yet reaped: gone for our purposes
    return start is None or len(fields) <= 19 or fields[19] == start


def write_server_info(run_dir: Path, socket: Path | None, pid: int | None = None,
                      config_dir: Path | None = None) -> dict[str, Any]:
    """Write ``server.json`` (atomically) for the process that trains this run.

    ``config_dir``: the folder the config's relative data paths start from (the run's
    ``config.toml`` keeps them relative), so ``cockpit report`` can find the val images."""
    pid = os.getpid() if pid is None else pid
    info = {
        "config_dir": str(Path(config_dir).resolve()) if config_dir is not None else None,
        "version": 1,
        "pid": pid,
        "process_start": process_start(pid),
        "socket": str(socket) if socket is not None else None,
        "started": time.time(),
        "run_dir": str(Path(run_dir).resolve()),
    }
    write_json(Path(run_dir) / SERVER_FILE, info)
    return info


def read_server_info(run_dir: Path) -> dict[str, Any] | None:
    data, _ = read_json(Path(run_dir) / SERVER_FILE)
    return data if isinstance(data, dict) else None


def count_lines(path: Path) -> int:
    """Lines in ``path`` (a resumed run appends to its ``events.jsonl``, so numbering starts there)."""
    try:
        with open(path, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return 0


def _registry() -> Path:
    return private_dir(runtime_dir() / "runs")


def register(run_dir: Path) -> None:
    """Note a detached run in the per-user registry (for ``attach auto`` from anywhere)."""
    run_dir = Path(run_dir).resolve()
    digest = hashlib.sha1(os.fsencode(str(run_dir))).hexdigest()[:16]
    (_registry() / f"{digest}.path").write_text(str(run_dir), encoding="utf-8")


def unregister(run_dir: Path) -> None:
    run_dir = Path(run_dir).resolve()
    digest = hashlib.sha1(os.fsencode(str(run_dir))).hexdigest()[:16]
    try:
        (_registry() / f"{digest}.path").unlink()
    except OSError:
        pass


def registered() -> list[Path]:
    """Run folders in the registry that still exist (entries of vanished runs are pruned)."""
    try:
        entries = list(_registry().glob("*.path"))
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            path = Path(entry.read_text(encoding="utf-8").strip())
        except OSError:
            continue
        if path.is_dir():
            found.append(path)
        else:
            entry.unlink(missing_ok=True)
    return found


@dataclass(frozen=True)
class RunInfo:
    """What ``cockpit ls`` shows about one run folder."""

    run_dir: Path
    state: str
    iteration: int
    total_iters: int
    best_ap50: float | None
    started: float | None
    updated: float
    socket: Path | None
    pid: int | None
    bad_lines: int = 0
    """Lines of ``events.jsonl`` that could not be read (skipped)."""

    @property
    def alive(self) -> bool:
        return self.state in ALIVE

    @property
    def attachable(self) -> bool:
        return self.alive and self.socket is not None


def _scan_events(path: Path) -> tuple[dict | None, int, int, float | None, float | None, int, str]:
    """(finished event, last iteration, total iterations, best AP50, first event time, bad lines, last state)."""
    finished = None
    last_state = ""
    iteration = total = 0
    best = None
    first = None
    stats = JsonlFile()
    # The codec skips (and counts) torn, too deep and wrongly typed lines.
    for event in iter_jsonl(path, EVENT_SCHEMA, stats):
        kind = event.get("kind")
        if first is None and event.get("time") is not None:
            first = codec.finite(event["time"])
        if isinstance(event.get("iter"), int):
            iteration = max(iteration, event["iter"])
        if kind == "run_started":
            total = int(event.get("total_iters") or 0)
            finished = None  # a resumed run appends: only the newest finish counts
        elif kind == "eval":
            ap50 = codec.finite((event.get("metrics") or {}).get("AP50"))
            if ap50 is not None and (best is None or ap50 > best):
                best = ap50
        elif kind == "finished":
            finished = event
        elif kind == "state" and isinstance(event.get("state"), str):
            last_state = event["state"]
    return finished, iteration, total, best, first, len(stats.bad_lines), last_state


def inspect(run_dir: Path) -> RunInfo:
    """The state and headline numbers of one run folder."""
    run_dir = Path(run_dir)
    events = run_dir / layout.EVENTS
    finished, iteration, total, best, first, bad_lines, last_state = _scan_events(events)
    server = read_server_info(run_dir) or {}
    pid = server.get("pid") if isinstance(server.get("pid"), int) else None
    if finished is not None:
        if finished.get("outcome") == "failed" or finished.get("state") == "FAILED":
            state = FAILED
        else:
            state = STOPPED if finished.get("outcome") == "stopped" else FINISHED
    elif pid is not None and pid_alive(pid, server.get("process_start")):
        state = PAUSED if last_state == "PAUSED" else RUNNING
    else:
        state = STALE
    socket = server.get("socket")
    try:
        updated = max(p.stat().st_mtime for p in (run_dir, events) if p.exists())
    except ValueError:
        updated = 0.0
    started = server.get("started") if isinstance(server.get("started"), (int, float)) else first
    return RunInfo(
        run_dir=run_dir,
        state=state,
        iteration=iteration,
        total_iters=total,
        best_ap50=best,
        started=started,
        updated=updated,
        socket=Path(socket) if isinstance(socket, str) and state in ALIVE else None,
        pid=pid,
        bad_lines=bad_lines,
    )


is_run_dir = layout.is_run_dir


def find_runs(output_dir: Path) -> list[RunInfo]:
    """Every run folder directly under ``output_dir``, newest first."""
    if not output_dir.is_dir():
        return []
    runs = [inspect(path) for path in output_dir.iterdir() if path.is_dir() and is_run_dir(path)]
    return sorted(runs, key=lambda run: run.started or run.updated, reverse=True)


def remember_output_dir(run_dir: Path) -> None:
    """Note the folder a run was started in, so ``cockpit ls`` finds it from anywhere."""
    folder = str(Path(run_dir).resolve().parent)
    try:
        path = _registry() / OUTPUT_DIRS_FILE
        known = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        # Folders deleted since (a test's temp dir, a cleaned-up experiment) are dropped.
        kept = [line for line in dict.fromkeys(known) if line and line != folder and Path(line).is_dir()]
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temp.write_text("".join(line + "\n" for line in [*kept, folder]), encoding="utf-8")
        os.replace(temp, path)
    except OSError:
        pass  # a listing aid: never a reason to refuse a run


def remembered_output_dirs() -> list[Path]:
    """The output folders runs were started in (those that still exist), oldest first."""
    try:
        lines = (_registry() / OUTPUT_DIRS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [Path(line) for line in dict.fromkeys(lines) if line and Path(line).is_dir()]


def default_runs(output_dir: Path | None = None) -> list[RunInfo]:
    """Runs under ``output_dir`` (default ``./runs``), under the output folders runs were
    started in (see :func:`remember_output_dir`), plus the detached runs registered anywhere."""
    runs = find_runs(output_dir or Path("runs"))
    seen = {run.run_dir.resolve() for run in runs}
    for folder in remembered_output_dirs():
        for run in find_runs(folder):
            if run.run_dir.resolve() not in seen:
                seen.add(run.run_dir.resolve())
                runs.append(run)
    for path in registered():
        if path.resolve() not in seen:
            seen.add(path.resolve())
            runs.append(inspect(path))
    return sorted(runs, key=lambda run: run.started or run.updated, reverse=True)


def resolve_attach_target(target: str | None) -> Path:
    """The run folder ``cockpit attach`` means.

    ``auto`` (or nothing): the newest running run among ``./runs`` and the registered
    detached runs. An output directory: the newest running run in it, else its newest
    run. A run directory: that run.
    """
    if target in (None, "auto"):
        running = [run for run in default_runs() if run.alive]
        if not running:
            raise RunLookupError("no running run found under ./runs or among your detached runs; name a run directory")
        attachable = [run for run in running if run.attachable] or running
        return attachable[0].run_dir
    path = Path(target).expanduser()
    if not path.is_dir():
        raise RunLookupError(f"{target}: no such run directory")
    if is_run_dir(path):
        return path
    runs = find_runs(path)
    if not runs:
        raise RunLookupError(f"{target}: not a run directory, and holds no runs")
    running = [run for run in runs if run.alive]
    return (running or runs)[0].run_dir


def format_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_table(runs: list[RunInfo], now: float | None = None) -> str:
    """The ``cockpit ls`` table: one run a line, newest first."""
    now = time.time() if now is None else now
    rows = [("RUN", "STATE", "ITER", "BEST AP50", "AGE", "")]
    for run in runs:
        total = f"/{run.total_iters}" if run.total_iters else ""
        best = f"{run.best_ap50:.3f}" if run.best_ap50 is not None else "-"
        age = format_age(now - (run.started or run.updated))
        note = "attach" if run.attachable else ""
        rows.append((str(run.run_dir), run.state, f"{run.iteration}{total}", best, age, note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def skipped_note(runs: list[RunInfo]) -> str | None:
    """One line naming the runs whose ``events.jsonl`` had unreadable lines (None: none had)."""
    damaged = [run for run in runs if run.bad_lines]
    if not damaged:
        return None
    total = sum(run.bad_lines for run in damaged)
    names = ", ".join(f"{run.run_dir.name} ({run.bad_lines})" for run in damaged[:3])
    more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
    return f"skipped {total} unreadable line(s) of events.jsonl in {names}{more}"
