"""One live owner per run directory: an OS lock (``flock``) on ``<run_dir>/.lock``.

The process that trains a run holds an exclusive ``flock`` on the lock file for the
run's lifetime. The kernel drops the lock when the process dies, however it dies, so a
lock left by a killed run is simply taken by the next one -- no pid guessing. The owner
writes its pid into the file once it has committed to the run, so a refused second
process can name it.

Taking the lock never changes a byte of an existing run folder: the file is only
created when missing, and the pid is written by :meth:`RunLock.record_owner`, which a
run calls after it has validated everything (a refused ``--resume`` leaves no trace).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from cockpit.runfiles.layout import LOCK

_HELD: set[int] = set()
"""Descriptors of the locks this process holds."""


def _close_in_child() -> None:
    # A forked child (a DataLoader worker) shares the lock's open file; were it to keep
    # its copy, a killed run's folder would stay locked until its workers noticed.
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


class RunBusyError(Exception):
    """The run directory is owned by another live process; ``str()`` is a one-line reason."""

    def __init__(self, run_dir: Path, pid: int | None):
        owner = f"pid {pid}" if pid else "another process"
        super().__init__(f"{run_dir} is in use by {owner}; stop that run first (or attach to it: cockpit attach {run_dir})")
        self.run_dir = run_dir
        self.pid = pid


def _pid_from_proc_locks(path: Path) -> int | None:
    """The pid holding a ``flock`` on ``path`` according to ``/proc/locks`` (Linux)."""
    try:
        inode = path.stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF"
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            try:
                return int(parts[4])
            except ValueError:
                return None
    return None


def owner_pid(run_dir: Path) -> int | None:
    """The pid the kernel lists as holding the lock, else the one recorded in the file
    (the file may still name an earlier, dead owner: the kernel's answer comes first)."""
    path = Path(run_dir) / LOCK
    pid = _pid_from_proc_locks(path)
    if pid is not None:
        return pid
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class RunLock:
    """The exclusive ``flock`` on a run directory's ``.lock``; not re-entrant."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self._fd: int | None = None
        self._created = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        """Take the lock now or raise :class:`RunBusyError` naming the owner (never waits)."""
        if self._fd is not None:
            return self
        self._created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunBusyError(self.run_dir, owner_pid(self.run_dir)) from None
        self._fd = fd
        _HELD.add(fd)
        return self

    def record_owner(self) -> None:
        """Write this process's pid into the lock file (after the run committed to the folder)."""
        if self._fd is None:
            raise RuntimeError("record_owner() without the lock")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self, *, abandon: bool = False) -> None:
        """Let the lock go. ``abandon``: the run never committed -- a lock file this
        object created is removed again, so the folder is as it was."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD.discard(fd)
        if abandon and self._created:
            self.path.unlink(missing_ok=True)
        elif not abandon:
            os.ftruncate(fd, 0)  # nobody owns the run now
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __del__(self) -> None:
        # A trainer dropped without close(): closing the descriptor is what frees a flock.
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _HELD.discard(fd)
            os.close(fd)
        except Exception:  # noqa: BLE001 - at interpreter exit anything may already be gone
            pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
