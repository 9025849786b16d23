"""The cockpit's view-model: what the panes show, folded from engine events.

Pure Python (no Textual): :meth:`CockpitState.apply` takes one engine event and returns
the names of the panes it changed. The widgets only draw what this holds.

Two rules keep the UI cheap however long the run is:

- Loss curves live in a :class:`~cockpit.ui.loss_history.LossHistory`, decimated to the
  plot's width (``cockpit/ui/decimation.py``), so a redraw never costs O(iterations).
- Times come from the events (``Event.time``), never from the wall clock, so it/s and ETA
  are the same every time a recorded or scripted stream is replayed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from cockpit.diagnostics.checklist import Checklist, ChecklistRow
from cockpit.engine.events import (
    AssignmentOverlay,
    ConfigChanged,
    CheckpointSaved,
    CommandAck,
    EvalResult,
    Event,
    FlagRaised,
    LRChanged,
    Outcome,
    PreviewReady,
    Progress,
    RunError,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    StartupFailed,
    StartupPhase,
    StartupStage,
    StateChanged,
    StepMetrics,
    WarningCategory,
)
from cockpit.progress import describe
from cockpit.ui.labels_state import LabelsState
from cockpit.ui.baseline import Baseline
from cockpit.ui.loss_history import SERIES, SHORT_NAMES, SMOOTHING, TERMS, TOTAL, WINDOWS, LossHistory

__all__ = [
    "SERIES", "SHORT_NAMES", "SMOOTHING", "TERMS", "TOTAL", "WINDOWS",
    "CockpitState", "LossHistory", "find_metric", "format_mb",
]

# Pane names used by apply() / the app to know what to redraw.
STATUS, LOSSES, MEMORY, CHECKLIST, PREVIEW = "status", "losses", "memory", "checklist", "preview"
LABELS = "labels"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def find_metric(metrics: dict[str, float], *names: str) -> float | None:
    """``metrics["AP50"]`` tolerant of spelling (``bbox/AP50``, ``ap50``, ``map_50``)."""
    wanted = {n.lower() for n in names}
    for key, value in metrics.items():
        simple = key.lower().rsplit("/", 1)[-1].replace("_", "").replace("@", "").replace(".", "")
        if simple in wanted and _finite(value):
            return float(value)
    return None


@dataclass
class OOMEvent:
    iter: int
    message: str


class CockpitState:
    """Everything the panes show; fold events in with :meth:`apply`."""

    def __init__(self, run_name: str = "", classes: Iterable[str] = (), *, memory_points: int = 120):
        self.run_name = run_name
        self.run_dir: str | None = None
        self.classes = list(classes)
        self.state: RunState = RunState.IDLE
        self.state_reason = ""
        self.iter = 0
        self.epoch = 0
        self.total_iters = 0
        self.iters_per_epoch = 0
        self.total_epochs = 0
        """Epochs the run reaches (fewer than run.epochs when run.max_iters ends it first)."""
        self.lr: float | None = None
        self.device = ""
        self.gpu_name = ""
        self.environment: dict[str, Any] = {}
        self.its: float | None = None
        self._rate_ref: tuple[float, int] | None = None
        self.losses = LossHistory()
        self.baseline: Baseline | None = None
        """Another run's curves drawn faintly behind the live ones (set by the app)."""
        self.evals: list[tuple[int, float]] = []
        self.val_losses: list[tuple[int, dict[str, float]]] = []
        """(iteration, the eval's ``val_loss`` terms and total), for the Losses pane's val markers."""
        self.labels = LabelsState()
        self.overlay: AssignmentOverlay | None = None
        self.last_eval: EvalResult | None = None
        self.memory: dict[str, float] = {}
        self.memory_history: deque[float] = deque(maxlen=memory_points)
        self.peak_mb = 0.0
        self.oom_events: list[OOMEvent] = []
        self.checklist = Checklist()
        self.preview: PreviewReady | None = None
        self.last_checkpoint: str | None = None
        self.last_checkpoint_iter: int | None = None
        self.last_error: RunError | None = None
        self.outcome: Outcome | None = None
        self.warnings: deque[RunWarning] = deque(maxlen=50)
        self.progress: Progress | None = None
        """The long wait under way (an evaluation...), shown in the status bar; None when none."""
        self.startup: StartupPhase | None = None
        """What the run is doing before its first iteration; None once it trains (or never started)."""
        self.startup_failure: StartupFailed | None = None

    # -- derived -----------------------------------------------------------------------
    @property
    def eta_seconds(self) -> float | None:
        if not self.its or not self.total_iters or self.state.is_terminal:
            return None
        return max(0, self.total_iters - self.iter) / self.its

    @property
    def flagged_rows(self) -> list[ChecklistRow]:
        """FLAGGED checklist rows, worst first."""
        return self.checklist.flagged()

    def class_name(self, label: int) -> str:
        if 1 <= label <= len(self.classes):
            return self.classes[label - 1]
        return f"class {label}"

    def set_baseline(self, baseline: Baseline | None) -> set[str]:
        """Compare the live curves with ``baseline`` (None: no baseline)."""
        self.baseline = baseline
        return {LOSSES}

    # -- folding -----------------------------------------------------------------------
    def apply(self, event: Event) -> set[str]:
        """Fold one event in; returns the panes that changed."""
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        return handler(event) if handler else set()

    def apply_all(self, events: Iterable[Event]) -> set[str]:
        changed: set[str] = set()
        for event in events:
            changed |= self.apply(event)
        return changed

    def _on_RunStarted(self, event: RunStarted) -> set[str]:
        self.run_dir = event.run_dir
        if event.run_dir:
            self.run_name = Path(event.run_dir).name
        self.environment = dict(event.environment)
        self.device = str(event.environment.get("device", ""))
        self.gpu_name = str(event.environment.get("gpu_name") or "")
        self.total_iters = event.total_iters
        self.iters_per_epoch = event.iters_per_epoch
        self.iter = event.start_iter
        self.epoch = event.start_epoch
        classes = event.config.get("data", {}).get("classes") if isinstance(event.config, dict) else None
        if classes:
            self.classes = list(classes)
        self.total_epochs = event.epochs
        # The LR of the first step to come (warm-up included); the config's base LR only for
        # streams written before RunStarted carried it.
        lr = event.config.get("optim", {}).get("lr") if isinstance(event.config, dict) else None
        if _finite(event.lr):
            self.lr = float(event.lr)
        elif self.lr is None and _finite(lr):
            self.lr = float(lr)
        self._rate_ref = None
        if isinstance(event.config, dict):
            self.labels.configure(event.config, event.environment)
        self.startup = StartupPhase.STARTING
        self.progress = None
        return {STATUS, LABELS, LOSSES}

    def _on_StartupStage(self, event: StartupStage) -> set[str]:
        self.startup = event.phase
        return {STATUS, LOSSES}

    def _on_StartupFailed(self, event: StartupFailed) -> set[str]:
        self.startup, self.startup_failure, self.progress = None, event, None
        self.state, self.outcome = RunState.FAILED, Outcome.FAILED
        self.state_reason = event.summary
        return {STATUS, LOSSES}

    @property
    def waiting_for(self) -> str:
        """What the Losses pane says before the first step: the start-up phase, its progress."""
        if self.startup_failure is not None:
            return "the run could not start: " + self.startup_failure.summary
        if self.startup is None:
            return "waiting for the first training step…"
        if self.startup is StartupPhase.CHECKING_DATA and self.progress is not None:
            return describe(self.progress) + "…"
        if self.startup is StartupPhase.STARTING:
            return "starting: waiting for the first training step…"
        return f"{self.startup.value}…"

    def _on_StepMetrics(self, event: StepMetrics) -> set[str]:
        if self._rate_ref is not None and event.iter > self._rate_ref[1] and event.time > self._rate_ref[0]:
            rate = (event.iter - self._rate_ref[1]) / (event.time - self._rate_ref[0])
            self.its = rate if self.its is None else 0.7 * self.its + 0.3 * rate
        self._rate_ref = (event.time, event.iter)
        self.startup = None
        self.iter = event.iter
        self.epoch = event.epoch
        self.lr = event.lr
        self.losses.add(event.iter, event.losses, event.loss)
        changed = {STATUS, LOSSES}
        if self.labels.add(event.iter, event.labels):
            changed.add(LABELS)
        if event.memory:
            self.memory = dict(event.memory)
            current = self.memory.get("allocated_mb", self.memory.get("rss_mb"))
            if _finite(current):
                self.memory_history.append(float(current))
            self.peak_mb = max(self.peak_mb, float(self.memory.get("peak_mb", current or 0.0) or 0.0))
            changed.add(MEMORY)
        return changed

    def _on_EvalResult(self, event: EvalResult) -> set[str]:
        self.last_eval = event
        ap50 = find_metric(event.metrics, "ap50", "map50")
        if ap50 is not None:
            self.evals.append((event.iter, ap50))
        if event.val_loss:
            self.val_losses.append((event.iter, dict(event.val_loss)))
        return {LOSSES, STATUS}

    def _on_ConfigChanged(self, event: ConfigChanged) -> set[str]:
        touched = [key for key in event.changed if key.startswith(("loss.", "sampler."))]
        if not touched or not isinstance(event.config, dict):
            return set()
        self.labels.patch(event.iter, {key: event.config.get(key.split(".")[0], {}).get(key.split(".")[1]) for key in touched})
        return {LABELS, LOSSES}

    def _on_AssignmentOverlay(self, event: AssignmentOverlay) -> set[str]:
        self.overlay = event
        return {PREVIEW}

    def _on_StateChanged(self, event: StateChanged) -> set[str]:
        self.state = RunState(event.state)
        self.state_reason = event.reason
        # A pause (or an eval) is not training time: restart the it/s reference.
        self._rate_ref = None
        return {STATUS}

    def _on_Progress(self, event: Progress) -> set[str]:
        self.progress = None if event.finished else event
        return {STATUS, LOSSES} if self.startup is not None else {STATUS}

    def _on_LRChanged(self, event: LRChanged) -> set[str]:
        self.lr = event.lr
        return {STATUS}

    def _on_CheckpointSaved(self, event: CheckpointSaved) -> set[str]:
        self.last_checkpoint = event.path
        self.last_checkpoint_iter = event.iter
        return {STATUS}

    def _on_CommandAck(self, event: CommandAck) -> set[str]:
        return set()

    def _on_RunWarning(self, event: RunWarning) -> set[str]:
        self.warnings.append(event)
        if event.category is WarningCategory.OOM_RETRY:
            self.oom_events.append(OOMEvent(event.iter, event.message))
            return {MEMORY}
        return set()

    def _on_RunError(self, event: RunError) -> set[str]:
        self.last_error = event
        return {STATUS}

    def _on_FlagRaised(self, event: FlagRaised) -> set[str]:
        self.checklist.apply(event)
        return {CHECKLIST}

    def _on_PreviewReady(self, event: PreviewReady) -> set[str]:
        self.preview = event
        return {PREVIEW}

    def _on_RunFinished(self, event: RunFinished) -> set[str]:
        self.state = RunState(event.state)
        self.outcome = event.outcome
        self.state_reason = event.reason or event.outcome.value
        self.iter = max(self.iter, event.iter)
        self.startup = None
        return {STATUS, LOSSES}


def format_mb(value: float | None) -> str:
    if value is None or not _finite(value):
        return "n/a"
    if value >= 1024:
        return f"{value / 1024:.2f} GiB"
    return f"{value:.0f} MiB"
