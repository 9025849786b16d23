"""The run directory: the record of a run, and the listener that writes it.

``<output_dir>/<name>-<timestamp>/`` holds ``config.toml`` (resolved), ``metrics.jsonl``,
``events.jsonl``, ``checkpoints/``, ``predictions/``, ``previews/`` and ``preflight.json``.
Files are appended one line at a time and flushed, so a killed process loses at most the
line being written.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, TextIO

from cockpit.engine.events import EvalResult, Event, StepMetrics

METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
CONFIG = "config.toml"
CHECKPOINTS = "checkpoints"
PREDICTIONS = "predictions"
PREVIEWS = "previews"
PREFLIGHT = "preflight.json"
LAST = "last.pt"
BEST = "best.pt"


def create(output_dir: Path, name: str) -> Path:
    """A new, unique run folder ``<name>-<YYYYmmdd-HHMMSS>``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = output_dir / f"{name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = output_dir / f"{name}-{stamp}-{suffix}"
    candidate.mkdir()
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


def _clean(value: Any) -> Any:
    """JSON has no NaN/Inf: write them as strings a reader can still recognise."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(_clean(record), separators=(",", ":"), allow_nan=False)


def train_record(event: StepMetrics) -> dict[str, Any]:
    """A ``metrics.jsonl`` training line: flat, one column per loss term."""
    record = {"kind": "train", "iter": event.iter, "epoch": event.epoch, "lr": event.lr, "loss": event.loss}
    record.update(event.losses)
    record.update(event.labels)
    record.update(
        time=event.iter_time,
        data_time=event.data_time,
        grad_norm=event.grad_norm,
        batch_size=event.batch_size,
    )
    record.update({k if k == "rss_mb" or k == "utilization" else f"mem_{k}": v for k, v in event.memory.items()})
    record["timestamp"] = event.time
    return record


def eval_record(event: EvalResult) -> dict[str, Any]:
    """A ``metrics.jsonl`` evaluation line."""
    return {
        "kind": "eval",
        "iter": event.iter,
        "epoch": event.epoch,
        "eval": {**event.metrics, "per_class": event.per_class},
        "detections_per_image": event.detections_per_image,
        "val_loss": dict(event.val_loss),
        "timestamp": event.time,
    }


class RunDirWriter:
    """Listener that appends every event to ``events.jsonl`` and metrics to ``metrics.jsonl``."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._events: TextIO = open(self.run_dir / EVENTS, "a", encoding="utf-8")
        self._metrics: TextIO = open(self.run_dir / METRICS, "a", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        self._write(self._events, event.to_dict())
        if isinstance(event, StepMetrics):
            self._write(self._metrics, train_record(event))
        elif isinstance(event, EvalResult):
            self._write(self._metrics, eval_record(event))

    @staticmethod
    def _write(handle: TextIO, record: dict[str, Any]) -> None:
        handle.write(dumps(record) + "\n")
        handle.flush()

    def close(self) -> None:
        self._events.close()
        self._metrics.close()
