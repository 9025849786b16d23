"""A scripted engine for UI tests: implements EngineLink, records commands, emits fixed events.

``FakeEngine`` emits its script synchronously from ``start()`` (so a test knows every event
is posted once ``start`` returns) and answers commands the way the trainer does (Pause ->
StateChanged, ScaleLR -> LRChanged, ...). Every event carries a fixed ``time`` so views
computed from event times (it/s, ETA) are the same on every run -- snapshots depend on it.

``LiveFakeEngine`` produces an endless synthetic run from a thread, for trying the app by
hand: ``python -m tests.ui.fake_engine`` opens the cockpit on it.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

from cockpit.diagnostics.catalog import LIVE_RULES
from cockpit.engine.commands import (
    ApplyPatch,
    Command,
    EvaluateNow,
    Pause,
    RequestPreview,
    Resume,
    TogglePause,
    RewindSkip,
    SaveCheckpoint,
    ScaleLR,
    SetLR,
    Stop,
)
from cockpit.engine.events import (
    AssignmentOverlay,
    CheckpointSaved,
    CommandAck,
    EvalResult,
    Event,
    FlagRaised,
    LRChanged,
    LRSource,
    PreviewReady,
    RunError,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    Severity,
    StateChanged,
    StepMetrics,
    WarningCategory,
)

T0 = 1_700_000_000.0
"""Fixed start time of every scripted run (2023-11-14)."""
CLASSES = ["circle", "square", "triangle"]
TOTAL_ITERS = 400
ITERS_PER_EPOCH = 100
SECONDS_PER_ITER = 0.25


def make_image(path: Path, size: tuple[int, int] = (160, 120)) -> Path:
    """A deterministic PNG with three shapes (the GT boxes of :func:`preview_event`)."""
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (40, 44, 52))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 20, 60, 60), fill=(220, 180, 60))
    draw.rectangle((90, 30, 140, 80), fill=(80, 150, 220))
    draw.polygon([(40, 110), (70, 70), (100, 110)], fill=(200, 90, 160))
    image.save(path)
    return path


GT_BOXES = [[20.0, 20.0, 60.0, 60.0], [90.0, 30.0, 140.0, 80.0], [40.0, 70.0, 100.0, 110.0]]
GT_LABELS = [1, 2, 3]


def preview_event(image_path: str | None, iteration: int, index: int = 0, predict: bool = False, t: float = T0) -> PreviewReady:
    boxes = [[22.0, 18.0, 61.0, 63.0], [86.0, 34.0, 138.0, 84.0]] if predict else []
    return PreviewReady(
        iter=iteration,
        index=index,
        image_path=image_path,
        image_size=(160, 120),
        gt_boxes=GT_BOXES,
        gt_labels=GT_LABELS,
        boxes=boxes,
        labels=[1, 2] if predict else [],
        scores=[0.91, 0.64] if predict else [],
        time=t,
    )


def losses_at(i: int) -> dict[str, float]:
    """Smoothly decaying terms with a deterministic wiggle (and a spike at it 150)."""
    decay = math.exp(-i / 120)
    wiggle = 0.04 * math.sin(i / 3.0)
    terms = {
        "loss_classifier": 0.25 + 0.55 * decay + wiggle,
        "loss_box_reg": 0.20 + 0.30 * decay + wiggle / 2,
        "loss_objectness": 0.03 + 0.60 * decay * decay + abs(wiggle) / 4,
        "loss_rpn_box_reg": 0.02 + 0.10 * decay,
    }
    if i == 150:
        terms["loss_classifier"] += 1.5
    return terms


def labels_at(i: int) -> dict[str, float]:
    """Assignment telemetry that improves the way a healthy run's does."""
    learned = 1 - math.exp(-i / 150)
    fg = 4 + 8 * learned
    return {
        "rpn_pos": 3 + 4 * learned, "rpn_neg": 253 - 4 * learned, "gt_no_anchor": 0.12,
        "roi_fg": fg, "roi_bg": 512 - fg, "roi_fg_frac": fg / 512,
        "cls_accuracy": 0.90 + 0.07 * learned, "fg_cls_accuracy": 0.6 * learned,
        "false_negative": 1 - 0.7 * learned, "gt_size": 38.0,
    }


def overlay_event(iteration: int, index: int = 0, t: float = T0) -> AssignmentOverlay:
    return AssignmentOverlay(
        iter=iteration, index=index, split="val", gt_boxes=GT_BOXES, gt_unmatched=[2],
        positive_anchors=[[18.0, 18.0, 62.0, 62.0], [24.0, 16.0, 56.0, 64.0], [88.0, 28.0, 142.0, 82.0]],
        fg_proposals=[[21.0, 19.0, 59.0, 62.0], [92.0, 31.0, 139.0, 78.0]],
        bg_proposals=[[0.0, 0.0, 40.0, 30.0], [110.0, 80.0, 160.0, 120.0], [60.0, 0.0, 100.0, 25.0]],
        time=t,
    )


def step_event(i: int, lr: float = 0.005, cuda: bool = True, t: float | None = None) -> StepMetrics:
    losses = losses_at(i)
    memory = {"rss_mb": 2100.0 + i}
    if cuda:
        memory.update(
            allocated_mb=3000.0 + 5 * (i % 40),
            reserved_mb=4200.0,
            peak_mb=3600.0 + i,
            total_mb=8192.0,
            utilization=87.0,
        )
    return StepMetrics(
        iter=i,
        epoch=(i - 1) // ITERS_PER_EPOCH + 1,
        lr=lr,
        losses=losses,
        loss=sum(losses.values()),
        iter_time=SECONDS_PER_ITER,
        data_time=0.01,
        grad_norm=3.0,
        memory=memory,
        batch_size=4,
        labels=labels_at(i),
        time=T0 + i * SECONDS_PER_ITER if t is None else t,
    )


def val_loss_at(i: int) -> dict[str, float]:
    """Validation terms a little above the training ones (no overfitting yet)."""
    terms = {name: value * 1.15 for name, value in losses_at(i).items()}
    return {**terms, "loss": sum(terms.values())}


def script(run_dir: str = "runs/shapes-20231114-221320", image_path: str | None = None,
           last_iter: int = 240, cuda: bool = True) -> list[Event]:
    """A run that started, trained ``last_iter`` iterations, evaluated, had an OOM retry and a flag."""
    at = lambda i: T0 + i * SECONDS_PER_ITER  # noqa: E731 - the one clock of the script
    events: list[Event] = [
        RunStarted(
            run_dir=run_dir,
            config={"data": {"classes": CLASSES}, "optim": {"lr": 0.005}},
            environment={"device": "cuda:0" if cuda else "cpu", "gpu_name": "Fake GPU 8GB" if cuda else None,
                         "torch": "2.5.0",
                         "model": {"rpn_batch_size_per_image": 256, "roi_batch_size_per_image": 512}},
            total_iters=TOTAL_ITERS,
            iters_per_epoch=ITERS_PER_EPOCH,
            time=T0,
        ),
        StateChanged(state=RunState.RUNNING, previous=RunState.IDLE, reason="started", time=T0),
        preview_event(image_path, 0, t=T0),
    ]
    for rule in LIVE_RULES[:3]:
        events.append(FlagRaised(rule=rule.id, title=rule.title, status="OK", evidence="all finite" if rule.id == "nonfinite_loss" else "checked", iter=10, time=at(10)))
    for i in range(2, last_iter + 1, 2):
        events.append(step_event(i, cuda=cuda, t=at(i)))
        if i == 100:
            events.append(
                EvalResult(iter=100, epoch=1, metrics={"AP": 0.21, "AP50": 0.42}, per_class={"circle": 0.3},
                           detections_per_image=2.0, num_images=20, time=at(100), val_loss=val_loss_at(100))
            )
            events.append(preview_event(image_path, 100, predict=True, t=at(100)))
            events.append(overlay_event(100, t=at(100)))
            events.append(CheckpointSaved(iter=100, epoch=1, path=f"{run_dir}/checkpoints/iter-000100.pt", reason="best AP", time=at(100)))
        if i == 200:
            events.append(
                EvalResult(iter=200, epoch=2, metrics={"AP": 0.33, "AP50": 0.61}, per_class={"circle": 0.5},
                           detections_per_image=2.5, num_images=20, time=at(200), val_loss=val_loss_at(200))
            )
        if i == 120:
            events.append(RunWarning(message="CUDA OOM at batch 4; retrying with 2", iter=120, category=WarningCategory.OOM_RETRY, time=at(120)))
            events.append(FlagRaised(rule="cuda_oom", title="CUDA out of memory", status="FLAGGED", severity=Severity.WARNING,
                                     evidence="OOM at it 120 (batch 4, 7.9 GiB allocated)", likely_cause="batch too big for the GPU",
                                     fix="lower data.batch_size or model.max_size; enable optim.amp", iter=120, time=at(120)))
        if i == 160:
            events.append(FlagRaised(rule="flat_loss", title="Loss flat, no foreground matched", status="OK",
                                     evidence="loss fell 58% over 160 it", iter=160, time=at(160)))
    return events


class FakeEngine:
    """EngineLink over a fixed script; records every command and answers like the trainer."""

    def __init__(self, events: list[Event] | None = None, run_dir: str | Path | None = None, respond: bool = True):
        self.events = list(events or [])
        self.listeners: list = []
        self.commands: list[Command] = []
        self.started = False
        self.closed = False
        self.close_timeout: float | None = None
        self.respond = respond
        self._state = RunState.IDLE
        self._run_dir = Path(run_dir) if run_dir else None
        self.iter = 0
        self.lr = 0.005
        self.clock = T0

    # -- EngineLink ----------------------------------------------------------------------
    def subscribe(self, listener) -> None:
        self.listeners.append(listener)

    def send(self, command: Command) -> None:
        self.commands.append(command)
        if self.respond:
            self._answer(command)

    def start(self) -> None:
        self.started = True
        for event in self.events:
            self.emit(event)

    def close(self, timeout: float | None = None) -> None:
        self.close_timeout = timeout
        self.closed = True
        if not self._state.is_terminal:
            self.emit(StateChanged(state=RunState.FINISHED, previous=self._state, reason="closed", iter=self.iter, time=self.clock))
            self.emit(RunFinished(state=RunState.FINISHED, iter=self.iter, epoch=1, outcome="stopped", time=self.clock))

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    # -- driving -------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if isinstance(event, (StateChanged, RunFinished)):
            self._state = RunState(event.state)
        if isinstance(event, StepMetrics):
            self.iter, self.lr, self.clock = event.iter, event.lr, event.time
        for listener in list(self.listeners):
            listener(event)

    def finish(self) -> None:
        """The run ends as a finished run does at the end of the script (iteration 400)."""
        self.emit(RunFinished(state=RunState.FINISHED, iter=400, epoch=4, outcome="finished", time=0.0))

    def _answer(self, command: Command) -> None:
        t = self.clock
        if isinstance(command, TogglePause):
            # As the engine does: resolved against its own state when it takes the command.
            command = Pause() if self._state is RunState.RUNNING else Resume()
        if isinstance(command, Pause) and self._state is RunState.RUNNING:
            self.emit(StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="paused by user", iter=self.iter, time=t))
        elif isinstance(command, (Resume, RewindSkip)) and self._state is RunState.PAUSED:
            self.emit(StateChanged(state=RunState.RUNNING, previous=RunState.PAUSED, reason="resumed", iter=self.iter, time=t))
        elif isinstance(command, (ScaleLR, SetLR)):
            previous = self.lr
            self.lr = command.lr if isinstance(command, SetLR) else self.lr * command.factor
            self.emit(LRChanged(iter=self.iter, lr=self.lr, previous=previous, source=LRSource.USER, time=t))
        elif isinstance(command, SaveCheckpoint):
            self.emit(CheckpointSaved(iter=self.iter, epoch=1, path=f"{self._run_dir}/checkpoints/iter-{self.iter:06d}.pt", reason="user", time=t))
        elif isinstance(command, Stop):
            if command.save:
                self.emit(CheckpointSaved(iter=self.iter, epoch=1, path=f"{self._run_dir}/checkpoints/last.pt", reason="stop", time=t))
            self.emit(StateChanged(state=RunState.STOPPING, previous=self._state, reason="stop", iter=self.iter, time=t))
        elif isinstance(command, ApplyPatch):
            if "optim.lr" in command.changes:
                previous, self.lr = self.lr, float(command.changes["optim.lr"])
                self.emit(LRChanged(iter=self.iter, lr=self.lr, previous=previous, source=LRSource.USER, time=t))
        self.emit(CommandAck(command=command.name, iter=self.iter, ok=True, time=t))


class LiveFakeEngine(FakeEngine):
    """An endless synthetic run from a background thread, obeying pause/resume/LR/eval/stop."""

    def __init__(self, run_dir: str | Path, image_path: str, rate: float = 20.0, nan_at: int | None = None):
        super().__init__(run_dir=run_dir, respond=True)
        self.image_path = image_path
        self.rate = rate
        self.nan_at = nan_at
        self._thread: threading.Thread | None = None
        self._wake = threading.Condition()
        self._stop = False
        self._evaluate = False
        self._preview: int | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="fake-engine")
            self._thread.start()

    def send(self, command: Command) -> None:
        with self._wake:
            self.commands.append(command)
            if isinstance(command, Stop):
                self._stop = True
            elif isinstance(command, EvaluateNow):
                self._evaluate = True
            elif isinstance(command, RequestPreview):
                self._preview = command.index
            else:
                self._answer(command)
            self._wake.notify_all()

    def close(self, timeout: float | None = None) -> None:
        self.send(Stop())
        if self._thread is not None:
            self._thread.join(timeout)
        self.closed = True

    def _run(self) -> None:
        now = time.time
        self.emit(RunStarted(run_dir=str(self._run_dir), config={"data": {"classes": CLASSES}}, environment={"device": "cpu", "torch": "fake"},
                             total_iters=TOTAL_ITERS * 10, iters_per_epoch=ITERS_PER_EPOCH, time=now()))
        self.emit(StateChanged(state=RunState.RUNNING, previous=RunState.IDLE, reason="started", time=now()))
        self.emit(preview_event(self.image_path, 0, t=now()))
        for rule in LIVE_RULES:
            self.emit(FlagRaised(rule=rule.id, title=rule.title, status="OK", evidence="fine so far", time=now()))
        i = 0
        while True:
            with self._wake:
                while self._state is RunState.PAUSED and not self._stop:
                    self._wake.wait()
                if self._stop:
                    break
                evaluate, self._evaluate = self._evaluate, False
                preview, self._preview = self._preview, None
            if evaluate or (i and i % 200 == 0):
                ap = 1 - math.exp(-i / 500)
                self.emit(EvalResult(iter=i, epoch=i // ITERS_PER_EPOCH + 1, metrics={"AP": ap * 0.6, "AP50": ap}, per_class={}, time=now()))
                self.emit(preview_event(self.image_path, i, predict=True, t=now()))
            if preview is not None:
                self.emit(preview_event(self.image_path, i, index=preview % 20, predict=i > 0, t=now()))
            i += 1
            self.clock = now()
            if self.nan_at == i:
                self.emit(StepMetrics(iter=i, epoch=1, lr=self.lr, losses={**losses_at(i), "loss_box_reg": float("nan")}, loss=float("nan"), time=now()))
                self.emit(FlagRaised(rule="nonfinite_loss", title="Loss is NaN / Inf", status="FLAGGED", severity=Severity.ERROR,
                                     evidence=f"loss_box_reg = nan at it {i} (images 17, 42)", likely_cause="LR too high or a degenerate box",
                                     fix="rewind and lower the LR, or clip gradients", iter=i, time=now()))
                self.emit(StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="non-finite loss", iter=i, time=now()))
                self.emit(RunError(summary=f"non-finite loss at iteration {i}", traceback="", iter=i, fatal=False, time=now()))
                continue
            if i % 2 == 0:
                self.emit(step_event(i, lr=self.lr, cuda=False, t=now()))
            time.sleep(1.0 / self.rate)
        self.emit(CheckpointSaved(iter=i, epoch=1, path=f"{self._run_dir}/checkpoints/last.pt", reason="stop", time=now()))
        self.emit(StateChanged(state=RunState.FINISHED, previous=self._state, reason="stopped", iter=i, time=now()))
        self.emit(RunFinished(state=RunState.FINISHED, iter=i, epoch=1, outcome="stopped", time=now()))


def main() -> None:  # pragma: no cover - for trying the app by hand
    import argparse
    import tempfile

    from cockpit.config import Config
    from cockpit.ui.app import create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--nan-at", type=int, default=None)
    parser.add_argument("--fail-at", type=int, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cockpit-fake-"))
    image = make_image(tmp / "preview.png")
    config = Config.model_validate({"run": {"name": "fake"}, "data": {"classes": CLASSES}})
    engine = LiveFakeEngine(tmp / "run", str(image), rate=args.rate, nan_at=args.nan_at)

    def factory(cfg, checkpoint):
        return LiveFakeEngine(tmp / "run2", str(image), rate=args.rate)

    create_app(engine, config, tmp / "config.toml", factory).run()


if __name__ == "__main__":  # pragma: no cover
    main()
