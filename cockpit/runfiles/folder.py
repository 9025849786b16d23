"""A run directory owned by this process: created fresh, or claimed to resume into.

Claiming an existing folder takes its lock and touches nothing else; the caller then
validates whatever it must (the checkpoint fits the config, ...) and only then calls
:meth:`RunFolder.commit`, which records the owner, clears what dead writers left
(temp files, torn last lines), moves records past the resumed checkpoint to
``metrics.abandoned.jsonl`` and writes ``config.toml`` and ``preflight.json``. A refusal
before ``commit`` therefore leaves the folder byte for byte as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cockpit.runfiles import layout
from cockpit.runfiles.jsonl import drop_torn_tail, split_after, write_atomic, write_json
from cockpit.runfiles.lock import RunLock


class RunFolder:
    """A run directory and the lock that makes this process its one owner."""

    def __init__(self, path: Path, lock: RunLock, *, fresh: bool):
        self.path = Path(path)
        self.lock = lock
        self.fresh = fresh
        self.abandoned_records = 0
        """Records moved to ``metrics.abandoned.jsonl`` by :meth:`commit`."""
        self.removed_temp_files: list[str] = []

    @classmethod
    def create(cls, output_dir: Path, name: str) -> "RunFolder":
        """A new ``<name>-<timestamp>`` folder, locked."""
        path = layout.create(Path(output_dir), name)
        return cls(path, RunLock(path).acquire(), fresh=True)

    @classmethod
    def claim(cls, path: Path) -> "RunFolder":
        """Lock an existing run folder (raises :class:`RunBusyError` when a live process owns it)."""
        return cls(Path(path), RunLock(path).acquire(), fresh=False)

    def file(self, name: str) -> Path:
        return self.path / name

    def commit(self, *, config_text: str, preflight: dict[str, Any] | None = None,
               resume_iteration: int | None = None) -> None:
        """Make the folder this run's: call only once everything is validated."""
        self.lock.record_owner()
        for temp in layout.stale_temp_files(self.path):
            temp.unlink(missing_ok=True)
            self.removed_temp_files.append(temp.name)
        (self.path / layout.CHECKPOINTS).mkdir(exist_ok=True)
        drop_torn_tail(self.file(layout.EVENTS))
        if resume_iteration is not None:
            self.abandoned_records = split_after(
                self.file(layout.METRICS), resume_iteration, self.file(layout.ABANDONED)
            )
        else:
            drop_torn_tail(self.file(layout.METRICS))
        write_atomic(self.file(layout.CONFIG), config_text)
        if preflight is not None:
            write_json(self.file(layout.PREFLIGHT), preflight)

    def release(self, *, abandon: bool = False) -> None:
        """Give up ownership; ``abandon`` (a refused start): undo what claiming created."""
        self.lock.release(abandon=abandon)
        if abandon and self.fresh:
            # A folder this process created a moment ago and never used: leave no debris.
            for child in (self.path / layout.CHECKPOINTS, self.path):
                try:
                    child.rmdir()
                except OSError:
                    pass
