"""What goes wrong, and what the engine does about it.

* **Non-finite loss**: the step already skipped the optimizer update. Interactive runs
  pause and offer a rewind; headless runs rewind on their own to the last good in-memory
  snapshot with LR x0.1, up to ``MAX_AUTO_REWINDS`` times, then stop FAILED after
  restoring that snapshot (so the stop's checkpoint keeps something usable). A snapshot is
  only taken of finite weights, so "good" means good.
* **CUDA out of memory**: free memory, halve the micro-batch (doubling gradient
  accumulation) and retry the same batch, up to ``MAX_OOM_RETRIES`` times; then a fault.
* **Any other exception in a step, a hook or a side job**: a fault. Interactive runs
  pause with the reason; headless runs stop with a checkpoint of the last good state.
* **Fault injection** (``--inject oom@N`` / ``nan@N``) fires here, so the same paths
  run on a machine without a GPU.
* **A listener that raises** is reported (at most three times) and keeps receiving.
"""

from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cockpit.engine import checkpoint as ckpt
from cockpit.engine.commands import Stop
from cockpit.engine.events import FaultCause, LRSource, RunError, RunState, RunWarning, WarningCategory
from cockpit.engine.faults import Injection
from cockpit.engine.hooks import StepOutcome
from cockpit.engine.step import StepResult, train_step

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.trainer import Trainer

MAX_OOM_RETRIES = 3
MAX_AUTO_REWINDS = 3
SNAPSHOT_EVERY = 50


@dataclass(frozen=True)
class Snapshot:
    """Finite weights and optimizer state of one iteration, on the CPU."""

    iteration: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]


def cpu_copy(state: Any, into: Any = None) -> Any:
    """A CPU copy of ``state``; tensors of ``into`` (a previous copy) with the same shape and
    dtype are overwritten in place instead of allocated again.

    A snapshot is the whole model plus its optimizer state (hundreds of MB for ResNet-50
    with momentum): reusing the previous snapshot's buffers saves that allocation, and the
    page faults of touching fresh memory, every ``SNAPSHOT_EVERY`` iterations.
    """
    if isinstance(state, torch.Tensor):
        if isinstance(into, torch.Tensor) and into.shape == state.shape and into.dtype == state.dtype and into.device.type == "cpu":
            return into.copy_(state.detach())
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        previous = into if isinstance(into, dict) else {}
        return {k: cpu_copy(v, previous.get(k)) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        previous = into if isinstance(into, type(state)) and len(into) == len(state) else [None] * len(state)
        return type(state)(cpu_copy(v, p) for v, p in zip(state, previous))
    return copy.deepcopy(state)


class Recovery:
    """NaN rewinds and snapshots, OOM retries, faults and fault injection for one trainer."""

    def __init__(self, trainer: "Trainer", injections: list[Injection]):
        self._trainer = trainer
        self.injections = injections
        self.snapshot: Snapshot | None = None
        self.pending_rewind = False
        """An interactive run paused on a non-finite loss: the next Resume rewinds first."""
        self.auto_rewinds = 0
        self.oom_retries_total = 0
        self._listener_errors: dict[int, int] = {}

    # -- the step, with OOM retries and injected faults -------------------------------------
    def step(self, images: list, targets: list) -> StepResult | None:
        """One training step; None when it did not happen (the fault was reported)."""
        t = self._trainer
        injections = [i for i in self.injections if i.iteration == t.iteration and not i.fired]
        # Under DDP every rank must make the same retry decision, so it rests on the
        # configured batch size rather than on how many samples this rank could read.
        batch_size = t.config.data.batch_size if t.parts.peers is not None else len(images)
        for attempt in range(MAX_OOM_RETRIES + 1):
            injected = next((i for i in injections if i.kind == "oom" and not i.fired), None)
            fail, poison = None, False
            if injected is not None:
                injected.fired = True
                fail = torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected by --inject oom@{injected.iteration})")
            else:
                poison = any(i.kind == "nan" for i in injections)
                for injection in injections:
                    injection.fired = True
            try:
                return train_step(
                    t.parts.train_model,
                    t.optimizer,
                    t.parts.scaler,
                    images,
                    targets,
                    accumulation=t.accumulation,
                    grad_clip=t.config.optim.grad_clip,
                    amp=t.parts.amp,
                    device_type=t.device.type,
                    poison=poison,
                    fail=fail,
                    peers=t.parts.peers,
                )
            except torch.cuda.OutOfMemoryError as error:
                if not self._recover_oom(error, batch_size, attempt):
                    return None
            except Exception as error:  # noqa: BLE001 - a failing step pauses/stops, never kills the run
                if t.parts.peers is not None:
                    # The other ranks are inside the step's collectives: this rank cannot
                    # pause alone; failing lets torchrun end the job.
                    raise
                self._step_failed(error)
                return None
        return None

    def _step_failed(self, error: Exception) -> None:
        """The step raised (e.g. SGD on an LR past float32): the iteration did not happen."""
        t = self._trainer
        t.iteration -= 1
        t.optimizer.zero_grad(set_to_none=True)
        if not ckpt.all_finite(t.model):
            # A half-done update must not reach the stop's checkpoint: the last good state does.
            self.restore_snapshot()
        self.fault(f"training step failed: {type(error).__name__}: {_first_line(error)}", error, FaultCause.STEP)

    def _recover_oom(self, error: BaseException, batch_size: int, attempt: int) -> bool:
        """Free memory, halve the micro-batch (doubling accumulation); False when out of options."""
        t = self._trainer
        facts = {
            "iter": t.iteration,
            "batch_size": batch_size,
            "micro_batch": -(-batch_size // t.accumulation),
            "accumulation": t.accumulation,
            "image_size": t.config.model.min_size,
            "error": str(error).splitlines()[0][:300],
        }
        from cockpit.engine.memory import sample

        facts.update(sample(t.device))
        t.optimizer.zero_grad(set_to_none=True)
        if t.device.type == "cuda":
            torch.cuda.empty_cache()
        t.call_hooks("on_oom", facts, fatal=False)
        if t.accumulation < batch_size and attempt < MAX_OOM_RETRIES:
            t.accumulation *= 2
            self.oom_retries_total += 1
            t.publish(
                RunWarning(
                    f"CUDA OOM at iteration {t.iteration}: retrying with micro-batch "
                    f"{-(-batch_size // t.accumulation)} x {t.accumulation} accumulation steps",
                    iter=t.iteration,
                    category=WarningCategory.OOM_RETRY,
                    details=facts | {"new_accumulation": t.accumulation},
                )
            )
            return True
        t.iteration -= 1
        self.fault("CUDA out of memory and the batch cannot be split further", error, FaultCause.OOM)
        return False

    # -- non-finite loss -----------------------------------------------------------------------
    def after_step(self, outcome: StepOutcome) -> None:
        """Keep a snapshot of good states; handle a non-finite step."""
        t = self._trainer
        if outcome.finite:
            t.last_good_iteration = t.iteration
            if self.snapshot is None or t.iteration - self.snapshot.iteration >= SNAPSHOT_EVERY:
                self.take_snapshot()
        else:
            self._on_nonfinite(outcome)

    def take_snapshot(self) -> None:
        t = self._trainer
        # A finite loss does not prove finite weights (an LR past float32 overflows them in
        # the update after the loss): only finite weights make a "good" snapshot.
        if not ckpt.all_finite(t.model):
            return
        old = self.snapshot
        self.snapshot = Snapshot(
            iteration=t.iteration,
            model=cpu_copy(t.model.state_dict(), old.model if old else None),
            optimizer=cpu_copy(t.optimizer.state_dict(), old.optimizer if old else None),
        )

    def _on_nonfinite(self, outcome: StepOutcome) -> None:
        t = self._trainer
        bad = [name for name, value in outcome.losses.items() if not np.isfinite(value)] or ["grad_norm"]
        summary = f"non-finite loss at iteration {outcome.iter} ({', '.join(bad)}); the optimizer step was skipped"
        if t.is_headless:
            if self.auto_rewinds >= MAX_AUTO_REWINDS:
                # Back to the last good state, so the stop's checkpoint keeps something usable.
                self.restore_snapshot()
                self.request_failure(f"loss still non-finite after {MAX_AUTO_REWINDS} rewinds with LR x0.1")
                return
            self.auto_rewinds += 1
            t.publish(RunWarning(summary, iter=outcome.iter, category=WarningCategory.NONFINITE))
            self.rewind(lr_factor=0.1, grad_clip=0.0, who="automatic")
            return
        t.publish(RunError(summary=summary, traceback="", iter=outcome.iter, fatal=False, cause=FaultCause.NONFINITE))
        t.set_state(RunState.PAUSED, "non-finite loss")
        self.pending_rewind = True
        if t.train_set is not None and outcome.image_ids:
            self._preview_culprit(outcome.image_ids[0])

    def restore_snapshot(self) -> None:
        """Back to the last good weights and optimizer state, keeping the current LR."""
        t = self._trainer
        snapshot = self.snapshot
        if snapshot is None:
            return
        # The snapshot's optimizer state carries the LR of that older iteration; keep the
        # current one so that successive rewinds compound (x0.1, then x0.01, ...).
        current_lr = t.lr
        t.model.load_state_dict(snapshot.model)
        # A copy: torch's Optimizer.load_state_dict keeps the given tensors when device and
        # dtype match, so the momentum buffers would *be* the snapshot's and the next steps
        # would change the snapshot in place (a second rewind would then restore drifted state).
        t.optimizer.load_state_dict(cpu_copy(snapshot.optimizer))
        t.live.restore_groups(current_lr)

    def rewind(self, lr_factor: float, grad_clip: float, who: str) -> None:
        t = self._trainer
        snapshot = self.snapshot
        self.restore_snapshot()
        if lr_factor != 1.0:
            t.live.set_lr(t.lr * lr_factor, LRSource.RECOVERY, t.iteration, t.epoch)
        if grad_clip > 0:
            t.live.set_grad_clip(grad_clip, t.iteration)
        restored = snapshot.iteration if snapshot else "the initial weights"
        t.publish(
            RunWarning(
                f"rewound to the state of iteration {restored} and skipped the bad batch ({who}); "
                f"LR x{lr_factor:g}" + (f", grad_clip={grad_clip:g}" if grad_clip > 0 else ""),
                iter=t.iteration,
                category=WarningCategory.NAN_REWIND,
                details={"restored_iter": snapshot.iteration if snapshot else 0, "lr_factor": lr_factor},
            )
        )
        self.pending_rewind = False

    def _preview_culprit(self, image_id: int) -> None:
        t = self._trainer
        try:
            index = t.train_set.index_of_image_id(image_id)
            if index is not None:
                t.side_jobs.publish_preview(index, predict=False, split="train")
        except Exception:  # noqa: BLE001 - a preview must never turn one fault into two
            pass

    # -- faults ----------------------------------------------------------------------------------
    def fault(
        self, summary: str, error: BaseException | None, cause: FaultCause = FaultCause.EXCEPTION, *, save: bool = True
    ) -> None:
        """Report a fault; pause (interactive) or stop with the last good state (headless).

        ``save`` False: the headless stop writes no checkpoint (the fault *was* writing one).
        """
        t = self._trainer
        text = "".join(traceback.format_exception(error)) if error is not None else ""
        t.publish(RunError(summary=summary, traceback=text, iter=t.iteration, fatal=t.is_headless, cause=cause))
        if t.is_headless:
            self.request_failure(summary, save=save)
        elif t.state is RunState.RUNNING:
            t.set_state(RunState.PAUSED, summary)

    def request_failure(self, reason: str, save: bool = True) -> None:
        self._trainer.failure_reason = reason
        self._trainer.send(Stop(save=save, reason=reason, failure=True))

    def listener_failed(self, listener: Any, error: BaseException) -> None:
        t = self._trainer
        count = self._listener_errors.get(id(listener), 0) + 1
        self._listener_errors[id(listener)] = count
        if count <= 3:  # a listener failing on every event must not flood the stream
            t.publish(
                RunWarning(
                    f"listener {getattr(listener, '__qualname__', type(listener).__name__)} raised "
                    f"{type(error).__name__}: {error}" + (" (further errors not reported)" if count == 3 else ""),
                    iter=t.iteration,
                    category=WarningCategory.LISTENER_ERROR,
                    details={"traceback": "".join(traceback.format_exception(error))},
                )
            )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "(no message)"
