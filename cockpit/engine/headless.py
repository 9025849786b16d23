"""The headless printer: one readable line per record, for logs, nohup and Slurm.

Plain text only -- no ANSI codes, no progress-bar redraws -- so a log file stays clean.
Lines also go to ``<run_dir>/cockpit.log`` so a detached or remote run keeps its story.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from cockpit.durations import format_duration
from cockpit.loss_names import loss_label
from cockpit.engine.events import (
    ConfigChanged,
    CheckpointSaved,
    CheckState,
    CommandAck,
    EvalResult,
    Event,
    FlagRaised,
    LRChanged,
    Progress,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    StateChanged,
    StepMetrics,
)
from cockpit.progress import PlainProgress



def format_memory(memory: dict[str, float]) -> str:
    if "allocated_mb" in memory:
        return f"cuda {memory['allocated_mb']:.0f}/{memory.get('reserved_mb', 0):.0f}MB peak {memory.get('peak_mb', 0):.0f}MB"
    return f"rss {memory.get('rss_mb', 0):.0f}MB"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None or value != value else format(value, spec)


def _changed_values(event: ConfigChanged) -> list[str]:
    """``loss.box=giou`` for each changed dotted field, read from the event's whole config."""
    values = []
    for dotted in event.changed:
        section, _, key = dotted.partition(".")
        values.append(f"{dotted}={event.config.get(section, {}).get(key)}")
    return values


def format_labels(labels: dict[str, float]) -> str:
    """`` | rpn 7:249 fg 12:500 (2.3%) acc 0.95/0.40 noanc 0.10`` (per image), or "" when absent."""
    if not labels:
        return ""
    get = labels.get
    return (
        f" | rpn {_number(get('rpn_pos'), '.0f')}:{_number(get('rpn_neg'), '.0f')}"
        f" fg {_number(get('roi_fg'), '.0f')}:{_number(get('roi_bg'), '.0f')}"
        f" ({_number(100 * get('roi_fg_frac', float('nan')), '.1f')}%)"
        f" acc {_number(get('cls_accuracy'), '.2f')}/{_number(get('fg_cls_accuracy'), '.2f')}"
        f" noanc {_number(get('gt_no_anchor'), '.2f')}"
    )


class HeadlessPrinter:
    """Listener that turns events into log lines."""

    def __init__(self, stream: TextIO | None = None, log_file: Path | None = None):
        self.stream = stream or sys.stdout
        self.log = open(log_file, "a", encoding="utf-8") if log_file else None
        self.total_iters = 0
        self.iters_per_epoch = 0
        self.epochs = 0
        self._error_logged = False
        self._progress = PlainProgress()
        """Long waits (an evaluation over thousands of images) as a line every few seconds."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunError) and event.fatal:
            # `cockpit run` says why on stderr, once; the reason and traceback are for the
            # record and bug reports: the log file (or, with none, the stream, which then is the log).
            self._write(f"error: {event.summary}" + (f"\n{event.traceback.rstrip()}" if event.traceback else ""),
                        log_only=self.log is not None)
            self._error_logged = True
            return
        if isinstance(event, RunFinished) and event.outcome == "failed":
            self._write(f"run failed at iteration {event.iter}", log_only=False)
            if event.reason and not self._error_logged:
                self._write(f"reason: {event.reason}", log_only=self.log is not None)
            return
        self._write(self.format(event))

    def _write(self, line: str | None, log_only: bool = False) -> None:
        if line is None:
            return
        for handle in (self.log,) if log_only else (self.stream, self.log):
            if handle is not None:
                handle.write(line + "\n")
                handle.flush()

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def format(self, event: Event) -> str | None:
        if isinstance(event, RunStarted):
            self.total_iters = event.total_iters
            self.iters_per_epoch = event.iters_per_epoch
            self.epochs = event.epochs or event.config.get("run", {}).get("epochs", 0)
            env = event.environment
            device = env.get("gpu_name") or env.get("device")
            resumed = f", resumed from {event.resumed_from} at iteration {event.start_iter}" if event.resumed_from else ""
            return (
                f"run {event.run_dir} on {device} (torch {env.get('torch')}, torchvision {env.get('torchvision')}); "
                f"{self.total_iters} iterations, {self.iters_per_epoch} per epoch{resumed}"
            )
        if isinstance(event, StepMetrics):
            # torchvision's own loss_dict keys: a log line has the room, and they are what users grep for.
            terms = " ".join(f"{loss_label(k)} {v:.4f}" for k, v in event.losses.items())
            speed = 1.0 / event.iter_time if event.iter_time > 0 else 0.0
            eta = format_duration((self.total_iters - event.iter) * event.iter_time) if self.total_iters else "?"
            return (
                f"it {event.iter}/{self.total_iters} ep {event.epoch}/{self.epochs} loss {event.loss:.4f} ({terms}) "
                f"lr {event.lr:.3g} {speed:.2f} it/s eta {eta} {format_memory(event.memory)}"
                + format_labels(event.labels)
            )
        if isinstance(event, EvalResult):
            m = event.metrics
            return (
                f"eval @ it {event.iter}: AP {m.get('AP', 0):.3f} AP50 {m.get('AP50', 0):.3f} AP75 {m.get('AP75', 0):.3f} "
                f"dets/img {event.detections_per_image:.1f} ({event.seconds:.1f}s)"
                + (f" val loss {event.val_loss['loss']:.4f}" if "loss" in event.val_loss else "")
            )
        if isinstance(event, ConfigChanged):
            return f"config changed at it {event.iter}: " + ", ".join(_changed_values(event))
        if isinstance(event, LRChanged):
            return f"lr {event.previous:.3g} -> {event.lr:.3g} at it {event.iter} ({event.source.value})"
        if isinstance(event, CheckpointSaved):
            return f"checkpoint {event.path} ({event.reason})"
        if isinstance(event, StateChanged):
            if event.state.value == "FAILED":
                return None  # the "run failed" line that follows says it once
            reason = f": {event.reason}" if event.reason else ""
            return f"state {event.state.value}{reason}"
        if isinstance(event, RunWarning):
            return f"warning: {event.message}"
        if isinstance(event, RunError):
            text = f"error: {event.summary}"
            return text + ("\n" + event.traceback.rstrip() if event.traceback else "")
        if isinstance(event, FlagRaised):
            if event.status is not CheckState.FLAGGED:
                return None
            return (
                f"FLAGGED [{event.severity.value}] {event.title}: {event.evidence}\n"
                f"  likely cause: {event.likely_cause}\n  fix: {event.fix}"
            )
        if isinstance(event, CommandAck):
            return None if event.ok else f"command {event.command} refused: {event.message}"
        if isinstance(event, Progress):
            return self._progress.line(event)
        if isinstance(event, RunFinished):
            reason = f" ({event.reason})" if event.reason else ""
            return f"run {event.outcome.value} at iteration {event.iter}{reason}"
        return None
