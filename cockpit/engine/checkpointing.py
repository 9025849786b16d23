"""Checkpoints of a run: where ``--resume`` points, what a checkpoint holds, save and load.

The file format itself (atomic writes, safe loading) is :mod:`cockpit.engine.checkpoint`;
this module knows the trainer's state: the keys torchvision's references use (``model``,
``optimizer``, ``lr_scheduler``, ``epoch``, ``args``) plus cockpit's own progress counters.
Only rank 0 writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cockpit.config import Config, dump_config
from cockpit.config.loader import config_to_dict
from cockpit.engine import checkpoint as ckpt
from cockpit.engine import rundir
from cockpit.engine.checkpoint_writer import BackgroundWrite
from cockpit.engine.events import CheckpointSaved, FaultCause, RunWarning, WarningCategory
from cockpit.engine.live_config import recorded_lr
from cockpit.engine.optimizer import load_optimizer_state, portable_state
from cockpit.engine.recovery import cpu_copy

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.trainer import Trainer


@dataclass(frozen=True)
class _Pending:
    """A background write, with what its ``CheckpointSaved`` will say."""

    write: BackgroundWrite
    reason: str
    best: bool
    iteration: int
    epoch: int


class ResumeError(Exception):
    """``--resume`` names nothing usable; the message says what was looked for."""


def resolve_resume(config: Config, resume: str | None) -> tuple[Path | None, Path | None]:
    """``--resume`` -> (run directory to append to, checkpoint to load)."""
    if not resume:
        return None, None
    output_dir = config.resolve_path(config.run.output_dir)
    if resume == "auto":
        found = rundir.newest(output_dir, config.run.name)
        if found is None:
            raise ResumeError(f"--resume auto: no run named {config.run.name!r} with a checkpoint under {output_dir}")
        return found, found / rundir.CHECKPOINTS / rundir.LAST
    path = Path(resume).expanduser()
    if path.is_dir():
        checkpoint = path / rundir.CHECKPOINTS / rundir.LAST
        if not checkpoint.is_file():
            raise ResumeError(f"--resume {path}: no checkpoints/{rundir.LAST} in that run directory")
        return path, checkpoint
    if path.is_file():
        owner = path.parent.parent if path.parent.name == rundir.CHECKPOINTS else None
        return owner, path
    raise ResumeError(f"--resume {path}: no such run directory or checkpoint file")


class Checkpointer:
    """Saves and loads the trainer's state (``last.pt`` / ``best.pt``)."""

    def __init__(self, trainer: "Trainer", run_dir: Path | None, resume_dir: Path | None, preloaded: dict | None = None):
        self._trainer = trainer
        self._run_dir = run_dir
        # Every rank reads the resumed run's record (rank 0 alone writes it), so all
        # ranks continue with the same LR.
        self._resume_dir = resume_dir
        self._preloaded = preloaded
        """Rank 0's checkpoint state, already loaded and checked before it claimed the run folder."""
        self.error = ""
        """Why the latest checkpoint could not be written (disk full...); empty after a good save."""
        self._pending: _Pending | None = None
        """The end-of-epoch checkpoint being written in the background, if any."""
        self._staging: dict[str, Any] | None = None
        """The host copy the last background write was made from; the next copy reuses its buffers.
        Kept for the whole run: one more host copy of model and optimizer state (~330 MB for
        ResNet-50 with momentum), beside the NaN-rewind snapshot's."""

    def state(self) -> dict[str, Any]:
        t = self._trainer
        config = t.config
        return {
            "model": t.model.state_dict(),
            "optimizer": portable_state(t.optimizer),
            "lr_scheduler": t.live.schedule.state_dict(),
            "scaler": t.parts.scaler.state_dict(),
            "epoch": t.epoch,
            "epoch_iter": t.epoch_iter,
            "iteration": t.iteration,
            "accumulation": t.accumulation,
            "best_ap": t.best_ap,
            "config": dump_config(config),
            "args": config_to_dict(config),
            "classes": list(config.data.classes),
            "label_to_category": {int(k): int(v) for k, v in t.train_set.label_to_category.items()},
            "rng": {"torch": torch.get_rng_state()},
        }

    def save(self, reason: str, best: bool = False, background: bool = False) -> bool:
        """Write ``last.pt`` (or ``best.pt``); refuses non-finite weights. Rank 0 only.

        ``background``: copy the state and write the copy on a thread of its own
        (``engine/checkpoint_writer.py``), for the end-of-epoch checkpoint; the
        ``CheckpointSaved`` event, or the fault, comes at a later iteration boundary or,
        in a pause, when the write ends (:meth:`poll`). A save first waits for the write
        in flight.
        """
        t = self._trainer
        if not t.is_main:
            return True
        path = self._run_dir / rundir.CHECKPOINTS / (rundir.BEST if best else rundir.LAST)
        if (failed := self.finish_pending()) is not None:
            if failed.write.path == path:
                # Not a fault: the newer save below replaces it, or reports its own failure.
                self.unwritten(failed, "writing a newer one")
            else:
                # best.pt is no stand-in for last.pt: the failed write stands as a fault.
                self._failed(failed.write.error)
        if not ckpt.all_finite(t.model):
            t.publish(RunWarning("weights are not finite: checkpoint NOT written", iter=t.iteration, category=WarningCategory.CHECKPOINT_REFUSED))
            return False
        try:
            if background:
                # Into the previous write's buffers: no fresh allocation (and page faults)
                # for a copy of the model every epoch.
                self._staging = cpu_copy(self.state(), self._staging)
                # A disk already full is told at once, as by a synchronous save.
                ckpt.check_room(self._staging, path)
                write = BackgroundWrite(ckpt.save_atomic, self._staging, path, on_done=t.control.wake)
                self._pending = _Pending(write, reason, best, t.iteration, t.epoch_number)
                return True
            path = ckpt.save_atomic(self.state(), path)
        except ckpt.CheckpointError as error:
            self._failed(error)
            return False
        self._saved(str(path), reason, best, t.iteration, t.epoch_number)
        return True

    def poll(self) -> None:
        """At an iteration boundary: report a background write that has ended (a failed one
        is a fault, as a failed synchronous save is)."""
        if self._pending is not None and self._pending.write.done():
            failed = self.finish_pending()
            if failed is not None:
                self._failed(failed.write.error)

    def finish_pending(self) -> "_Pending | None":
        """Wait for the background write in flight, if any: publishes its ``CheckpointSaved``
        when it was written; returns it when it was not (``.write.error`` says why; the
        caller reports it)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        pending.write.wait()
        if pending.write.error is not None:
            return pending
        self._saved(str(pending.write.path), pending.reason, pending.best, pending.iteration, pending.epoch)
        return None

    def unwritten(self, failed: "_Pending", then: str) -> None:
        """Warn that a background write failed where no fault should follow (``then``: what happens instead)."""
        self._trainer.publish(RunWarning(
            f"checkpoint of iteration {failed.iteration} not written ({failed.write.error}); {then}",
            iter=failed.iteration, category=WarningCategory.CHECKPOINT_REFUSED,
        ))

    def _saved(self, path: str, reason: str, best: bool, iteration: int, epoch: int) -> None:
        self.error = ""
        self._trainer.publish(CheckpointSaved(iter=iteration, epoch=epoch, path=path, reason=reason, best=best))

    def _failed(self, error: ckpt.CheckpointError) -> None:
        # A full disk pauses the run (the user frees space and resumes) or stops a
        # headless one without another write; the previous checkpoint stays as it was.
        self.error = str(error)
        self._trainer.recovery.fault(self.error, None, FaultCause.CHECKPOINT, save=False)

    def warn_if_disk_nearly_full(self) -> None:
        t = self._trainer
        if self._run_dir is not None:
            flag = ckpt.nearly_full_flag(self._run_dir, ckpt.tensor_bytes(t.model.state_dict()), t.iteration)
            if flag is not None:
                t.publish(flag)

    def load(self, path: Path) -> None:
        t = self._trainer
        state, self._preloaded = self._preloaded or ckpt.load(path, map_location=t.device), None
        if ckpt.is_references(state):
            iters_per_epoch = -(-t.sampler.per_rank // t.config.data.batch_size)
            state, notes = ckpt.from_references(state, iters_per_epoch, t.live.schedule.state_dict())
            for note in notes:
                t.publish(RunWarning(note, iter=0, category=WarningCategory.FOREIGN_CHECKPOINT))
        try:
            t.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError) as error:
            raise ckpt.CheckpointError(f"{path} does not fit this model (arch or classes changed?): {error}") from None
        if "optimizer" in state:
            try:
                load_optimizer_state(t.optimizer, state["optimizer"])
            except (ValueError, KeyError) as error:  # other parameter groups (e.g. --norm-weight-decay)
                t.publish(RunWarning(f"optimizer state not loaded ({error}); momentum starts afresh", iter=0, category=WarningCategory.FOREIGN_CHECKPOINT))
        if state.get("scaler"):
            t.parts.scaler.load_state_dict(state["scaler"])
        t.epoch = int(state.get("epoch", 0))
        t.epoch_iter = int(state.get("epoch_iter", 0))
        t.iteration = int(state.get("iteration", 0))
        t.accumulation = int(state.get("accumulation", 1))
        t.best_ap = float(state.get("best_ap", -1.0))
        t.last_good_iteration = t.iteration
        # Rank 0's generator state; the other ranks keep their own seed so their
        # augmentations stay different from rank 0's.
        if "rng" in state and "torch" in state["rng"] and t.is_main:
            torch.set_rng_state(state["rng"]["torch"].cpu())
        schedule = state.get("lr_scheduler")
        schedule = schedule if isinstance(schedule, dict) and "base_lr" in schedule else None
        # The LR the user last set may be newer than this checkpoint (e.g. a kill after a
        # `+`): the run directory's effective config records it.
        t.live.restore(schedule, recorded_lr(self._resume_dir), t.iteration, t.epoch)
