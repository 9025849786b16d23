"""Events the engine publishes: frozen, JSON-serialisable dataclasses.

The same stream feeds the TUI, the headless printer, the run-directory writer
(``events.jsonl``), the diagnostics and the report, so an event holds only numbers,
strings, lists and dicts -- never a tensor. Each class names itself with ``kind``;
:func:`event_from_dict` turns a JSON line back into the same object.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


class RunState(str, enum.Enum):
    """Where the run is in its life: IDLE -> RUNNING <-> PAUSED -> STOPPING -> FINISHED | FAILED."""

    IDLE = "IDLE"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPING = "STOPPING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunState.FINISHED, RunState.FAILED)


class LRSource(str, enum.Enum):
    """Who changed the learning rate."""

    SCHEDULE = "schedule"
    USER = "user"
    RECOVERY = "recovery"


class CheckState(str, enum.Enum):
    """A checklist row's state (a diagnostic rule's verdict)."""

    NOT_CHECKED = "not yet checked"
    OK = "OK"
    FLAGGED = "FLAGGED"


class Outcome(str, enum.Enum):
    """How a run ended."""

    FINISHED = "finished"
    """Ran to the end."""
    STOPPED = "stopped"
    """Stopped by the user or a signal."""
    FAILED = "failed"


class FaultCause(str, enum.Enum):
    """What a ``RunError`` is about, so front-ends decide without reading its text."""

    NONFINITE = "nonfinite"
    """A NaN/Inf loss or gradient (the optimizer step was skipped)."""
    OOM = "oom"
    """CUDA out of memory that retries with smaller micro-batches could not absorb."""
    STEP = "step"
    """The training step raised."""
    HOOK = "hook"
    """A hook raised."""
    CHECKPOINT = "checkpoint"
    """A checkpoint could not be written (disk full...); the previous one stays as it was."""
    EXCEPTION = "exception"
    """Anything else (setup, data, a side job)."""


class Severity(str, enum.Enum):
    """How bad a diagnostic flag or warning is."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_REGISTRY: dict[str, type["Event"]] = {}


@dataclass(frozen=True)
class Event:
    """Base of every engine event; ``time`` is seconds since the epoch."""

    kind: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _REGISTRY[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.value if isinstance(value, enum.Enum) else value
        return data


@dataclass(frozen=True)
class RunStarted(Event):
    """The run began (or resumed): the resolved config and the environment."""

    kind: ClassVar[str] = "run_started"
    run_dir: str
    config: dict[str, Any]
    environment: dict[str, Any]
    start_iter: int = 0
    start_epoch: int = 0
    total_iters: int = 0
    iters_per_epoch: int = 0
    resumed_from: str | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    """The data this run trains and evaluates on (``cockpit.data.fingerprint``): hashes and
    image counts per split, so ``cockpit compare`` can tell whether runs saw the same data."""
    total_epochs: int = 0
    """Epochs the run will reach (fewer than ``run.epochs`` when ``run.max_iters`` ends it first)."""
    lr: float | None = None
    """The LR of the first step to come (warm-up included), not the config's base LR."""

    @property
    def epochs(self) -> int:
        """Epochs the run reaches: ``total_epochs``, or derived for streams written before it existed."""
        if self.total_epochs:
            return self.total_epochs
        if self.total_iters and self.iters_per_epoch:
            return max(1, -(-self.total_iters // self.iters_per_epoch))
        return 0


@dataclass(frozen=True)
class StepMetrics(Event):
    """One recorded training step (every ``run.log_every`` iterations)."""

    kind: ClassVar[str] = "step"
    iter: int
    epoch: int
    lr: float
    losses: dict[str, float]
    loss: float
    iter_time: float = 0.0
    data_time: float = 0.0
    grad_norm: float = 0.0
    memory: dict[str, float] = field(default_factory=dict)
    batch_size: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    """``cpu_others`` (cores other processes kept busy), ``cpu_cores``, ``torch_threads`` (engine/cpu.py)."""
    labels: dict[str, float] = field(default_factory=dict)
    """Label assignment, per image (rpn_pos, rpn_neg, gt_no_anchor, roi_fg, roi_bg, roi_fg_frac,
    cls_accuracy, fg_cls_accuracy, false_negative): means over the iterations since the last record."""


@dataclass(frozen=True)
class EvalResult(Event):
    """A COCO evaluation on the val split."""

    kind: ClassVar[str] = "eval"
    iter: int
    epoch: int
    metrics: dict[str, float]
    per_class: dict[str, float]
    detections_per_image: float = 0.0
    images_without_detections: int = 0
    num_images: int = 0
    score_histogram: list[int] = field(default_factory=list)
    predictions_path: str | None = None
    seconds: float = 0.0
    val_loss: dict[str, float] = field(default_factory=dict)
    """The four loss terms and their total (``loss``) on the val split (``engine/val_loss.py``)."""


@dataclass(frozen=True)
class StateChanged(Event):
    """The run's state moved; ``reason`` says why (user pause, NaN, finished, ...)."""

    kind: ClassVar[str] = "state"
    state: RunState
    previous: RunState
    reason: str = ""
    iter: int = 0


@dataclass(frozen=True)
class LRChanged(Event):
    """The learning rate changed."""

    kind: ClassVar[str] = "lr"
    iter: int
    lr: float
    previous: float
    source: LRSource


@dataclass(frozen=True)
class ConfigChanged(Event):
    """The effective config changed (an LR key, a live patch, a recovery): the whole of it.

    ``config["optim"]["lr"]`` is the schedule's base LR (what a config file would say);
    the LR the optimizer uses now is the latest ``LRChanged``/``StepMetrics`` one.
    """

    kind: ClassVar[str] = "config"
    iter: int
    config: dict[str, Any]
    changed: list[str] = field(default_factory=list)
    """Dotted names of the fields that changed."""


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """A checkpoint was written atomically."""

    kind: ClassVar[str] = "checkpoint"
    iter: int
    epoch: int
    path: str
    reason: str = ""
    best: bool = False


@dataclass(frozen=True)
class CommandAck(Event):
    """A command was applied (``ok``) or refused (``message`` says why)."""

    kind: ClassVar[str] = "ack"
    command: str
    iter: int
    ok: bool = True
    message: str = ""


class WarningCategory(str, enum.Enum):
    """What a ``RunWarning`` is about, so front-ends group, colour and count warnings
    without reading their text."""

    GENERAL = "general"
    SKIPPED_SAMPLE = "skipped_sample"
    """A sample could not be read or had no valid box; the run went on without it."""
    OOM_RETRY = "oom_retry"
    """Out of memory: the step is retried with half the batch and gradient accumulation."""
    NONFINITE = "nonfinite"
    NAN_REWIND = "nan_rewind"
    """The weights were rewound to the last finite snapshot."""
    CHECKPOINT_REFUSED = "checkpoint_refused"
    FOREIGN_CHECKPOINT = "foreign_checkpoint"
    """A checkpoint from another setup was loaded only in part."""
    LR_CAPPED = "lr_capped"
    LISTENER_LAG = "listener_lag"
    LISTENER_ERROR = "listener_error"
    RUN_FILES = "run_files"
    """A file the run folder should hold (server.json) could not be written."""
    SIDE_JOB_FAILED = "side_job_failed"
    """An evaluation, preview or overlay beside training failed; training goes on."""
    REMOTE = "remote"
    """The link to a run in another process dropped or garbled something."""
    CONNECTION = "connection"


@dataclass(frozen=True)
class RunWarning(Event):
    """Something went wrong but the run goes on (a skipped sample, a failing listener)."""

    kind: ClassVar[str] = "warning"
    message: str
    iter: int = 0
    category: WarningCategory = WarningCategory.GENERAL
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept the category's text (events.jsonl, a socket); one this version does not
        # know (a newer writer) is still a warning, shown as a general one.
        if not isinstance(self.category, WarningCategory):
            try:
                category = WarningCategory(self.category)
            except ValueError:
                category = WarningCategory.GENERAL
            object.__setattr__(self, "category", category)


@dataclass(frozen=True)
class RunError(Event):
    """An exception stopped or paused the run."""

    kind: ClassVar[str] = "error"
    summary: str
    traceback: str
    iter: int = 0
    fatal: bool = True
    cause: FaultCause = FaultCause.EXCEPTION


@dataclass(frozen=True)
class FlagRaised(Event):
    """A diagnostic rule changed its verdict (``severity`` None-like ``ok`` clears it)."""

    kind: ClassVar[str] = "flag"
    rule: str
    title: str
    status: CheckState
    severity: Severity = Severity.INFO
    evidence: str = ""
    likely_cause: str = ""
    fix: str = ""
    iter: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept the state's text or name too (pre-flight JSON, old events.jsonl lines).
        status = self.status
        if not isinstance(status, CheckState):
            try:
                status = CheckState(status)
            except ValueError:
                status = CheckState[str(status).upper()]
        object.__setattr__(self, "status", status)


@dataclass(frozen=True)
class PreviewReady(Event):
    """Predictions for one val image, computed on the engine side for the preview pane."""

    kind: ClassVar[str] = "preview"
    iter: int
    index: int
    image_path: str | None
    image_size: tuple[int, int]
    gt_boxes: list[list[float]]
    gt_labels: list[int]
    boxes: list[list[float]]
    labels: list[int]
    scores: list[float]


@dataclass(frozen=True)
class AssignmentOverlay(Event):
    """How one preview image's GT boxes were matched: for the preview pane's ``a`` overlay.

    Boxes are xyxy in the preview image's pixels. ``gt_unmatched`` indexes the GT boxes
    that no anchor reaches at the RPN foreground IoU (they only get a low-quality match).
    """

    kind: ClassVar[str] = "assignment_overlay"
    iter: int
    index: int
    split: str
    gt_boxes: list[list[float]]
    gt_unmatched: list[int]
    positive_anchors: list[list[float]]
    fg_proposals: list[list[float]]
    bg_proposals: list[list[float]]
    rpn_fg_iou_thresh: float = 0.7
    roi_fg_iou_thresh: float = 0.5


@dataclass(frozen=True)
class RunFinished(Event):
    """The engine thread is done; ``state`` is FINISHED or FAILED."""

    kind: ClassVar[str] = "finished"
    state: RunState
    iter: int
    epoch: int
    outcome: Outcome = Outcome.FINISHED
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))


class ProgressTask(str, enum.Enum):
    """Which long wait a :class:`Progress` event measures."""

    PREFLIGHT = "checking data"
    """The pre-flight reading every image header of a split."""
    ANNOTATIONS = "loading annotations"
    """The first read of a large annotation file (bytes)."""
    EVALUATION = "evaluating"
    """A COCO evaluation over the val split (images)."""
    REPORT = "building report"
    """``cockpit report`` reading a run directory and drawing its plots (stages)."""


@dataclass(frozen=True)
class Progress(Event):
    """How far a long wait has come: ``done`` of ``total`` units, at ``rate`` units/s.

    ``detail`` names what is being counted ("train images", "MB"); ``eta_seconds`` is
    None until a rate is known. Emitted a few times a second at most.
    """

    kind: ClassVar[str] = "progress"
    task: ProgressTask
    done: int
    total: int
    detail: str = ""
    rate: float = 0.0
    eta_seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", ProgressTask(self.task))

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done >= self.total


class StartupPhase(str, enum.Enum):
    """What a run is doing before its first iteration; the cockpit shows it from its first frame."""

    CHECKING_DATA = "checking data"
    """The pre-flight check (its :class:`Progress` events count the images)."""
    BUILDING_MODEL = "building model"
    """Importing torch, claiming the run folder, building the model and the data loaders."""
    STARTING = "starting"
    """The run has started (``RunStarted``); its first iteration is under way."""


@dataclass(frozen=True)
class StartupStage(Event):
    """A run that is starting moved to its next phase (before ``RunStarted``)."""

    kind: ClassVar[str] = "startup"
    phase: StartupPhase

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", StartupPhase(self.phase))


@dataclass(frozen=True)
class StartupFailed(Event):
    """The run could not start -- the pre-flight found errors, a resume was refused --
    and nothing was trained. ``summary`` is one line; ``detail`` says more (each
    pre-flight error with its fix, or the traceback); ``preflight`` is True when the
    pre-flight's errors are the reason (their rows are in the checklist)."""

    kind: ClassVar[str] = "startup_failed"
    summary: str
    detail: str = ""
    preflight: bool = False


_ENUMS = {
    "StartupPhase": StartupPhase,
    "ProgressTask": ProgressTask,
    "RunState": RunState,
    "LRSource": LRSource,
    "Severity": Severity,
    "Outcome": Outcome,
    "FaultCause": FaultCause,
    "CheckState": CheckState,
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from ``to_dict()`` output (a line of ``events.jsonl``)."""
    data = dict(data)
    kind = data.pop("kind")
    cls = _REGISTRY[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in fields}
    for name, value in kwargs.items():
        enum_type = _ENUMS.get(str(fields[name].type))
        if enum_type is not None and value is not None:
            kwargs[name] = enum_type(value)
    if "image_size" in kwargs:
        kwargs["image_size"] = tuple(kwargs["image_size"])
    return cls(**kwargs)
