"""The names of a run directory's files, and finding, creating and tidying run folders.

``<output_dir>/<name>-<YYYYmmdd-HHMMSS>/`` holds:

- ``config.toml`` -- the resolved config the run started with;
- ``effective.toml`` -- the config in effect after the last live change (LR keys, patches,
  a recovery's LR cut), rewritten atomically at each; ``--resume`` takes its ``optim.lr``;
- ``metrics.jsonl`` -- one line per logged training step or evaluation;
- ``events.jsonl`` -- every engine event, one line each;
- ``metrics.abandoned.jsonl`` -- records a resumed run cut from ``metrics.jsonl`` because
  they came after the checkpoint it resumed from (so ``metrics.jsonl`` is one history);
- ``checkpoints/last.pt``, ``checkpoints/best.pt`` -- written atomically;
- ``predictions/``, ``previews/``, ``preflight.json``, ``cockpit.log``, ``server.json``;
- ``.lock`` -- held (``flock``) by the one live process that owns the run.
"""

from __future__ import annotations

import time
from pathlib import Path

CONFIG = "config.toml"
EFFECTIVE = "effective.toml"
METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
ABANDONED = "metrics.abandoned.jsonl"
CHECKPOINTS = "checkpoints"
PREDICTIONS = "predictions"
PREVIEWS = "previews"
PREFLIGHT = "preflight.json"
LOG = "cockpit.log"
SERVER = "server.json"
LOCK = ".lock"
LAST = "last.pt"
BEST = "best.pt"

TEMP_SUFFIX = ".tmp"
"""Atomic writers put their data in ``.<name>.*.tmp`` next to the target first."""


def create(output_dir: Path, name: str) -> Path:
    """A new, unique run folder ``<name>-<YYYYmmdd-HHMMSS>`` with its ``checkpoints/``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = output_dir / f"{name}-{stamp}"
    suffix = 1
    while True:
        try:
            # mkdir without exist_ok: two runs started in the same second get two folders.
            candidate.mkdir()
            break
        except FileExistsError:
            suffix += 1
            candidate = output_dir / f"{name}-{stamp}-{suffix}"
    (candidate / CHECKPOINTS).mkdir()
    return candidate


def newest(output_dir: Path, name: str) -> Path | None:
    """The most recent run folder of ``name`` that has a checkpoint (for ``--resume auto``)."""
    if not output_dir.is_dir():
        return None
    candidates = [
        path
        for path in output_dir.glob(f"{name}-*")
        if path.is_dir() and (path / CHECKPOINTS / LAST).is_file()
    ]
    return max(candidates, key=lambda path: (path / CHECKPOINTS / LAST).stat().st_mtime, default=None)


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` looks like a run folder (any of the files only a run writes)."""
    return any((path / name).is_file() for name in (EVENTS, CONFIG, SERVER))


def stale_temp_files(run_dir: Path) -> list[Path]:
    """Temporary files of atomic writers in the run folder and its ``checkpoints/``.

    Only meaningful while holding the run's lock: then no live writer owns any of them.
    """
    found: list[Path] = []
    for folder in (run_dir, run_dir / CHECKPOINTS):
        if folder.is_dir():
            found += [p for p in folder.glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    return sorted(found)
