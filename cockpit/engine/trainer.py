"""The trainer: a background thread that runs the loop and the state machine.

State machine: IDLE -> RUNNING <-> PAUSED -> STOPPING -> FINISHED | FAILED.

The trainer itself is the loop (read commands, step, publish) and the state. Every other
job belongs to a collaborator built in ``__init__``, each in its own module:

* :mod:`~cockpit.engine.setup` builds device, data, model and optimizer (in the thread);
* :mod:`~cockpit.engine.control` queues and applies commands (and the multi-GPU exchange);
* :mod:`~cockpit.engine.live_config` is the one home of the effective config and the LR;
* :mod:`~cockpit.engine.recovery` handles what goes wrong: NaN rewinds, OOM, faults;
* :mod:`~cockpit.engine.side_jobs` evaluates, previews and publishes pre-flight verdicts;
* :mod:`~cockpit.engine.checkpointing` saves and loads checkpoints.

Exceptions never escape the thread: a fault in a step, a hook or a listener becomes an
event, and the run pauses (interactive) or stops with a checkpoint of the last good state
(headless). Hooks (metrics, evaluation, checkpoints, and the diagnostics that whoever
assembles the run attaches) hang off the loop; see :mod:`cockpit.engine.hooks`.

In a multi-process run (``torchrun``) every rank runs a trainer; only rank 0 publishes
events and writes the run directory, checkpoints and evaluations.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from cockpit.config import Config
from cockpit.config.loader import config_to_dict
from cockpit.engine import rundir
from cockpit.engine.builtin_hooks import default_hooks
from cockpit.engine.bus import EventBus
from cockpit.engine.checkpointing import Checkpointer, ResumeError, resolve_resume
from cockpit.engine.commands import Command, Stop
from cockpit.engine.control import Control
from cockpit.engine.cpu import LoadMeter, usable_cores
from cockpit.engine.distributed import SINGLE, DistContext
from cockpit.engine.events import (
    CommandAck,
    Event,
    FaultCause,
    Outcome,
    RunError,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    StateChanged,
    WarningCategory,
)
from cockpit.engine.faults import Injection
from cockpit.engine.hooks import Hook, StepOutcome
from cockpit.engine.host_memory import keep_freed_memory
from cockpit.engine.link import Listener
from cockpit.engine.live_config import LiveConfig
from cockpit.engine.recovery import Recovery
from cockpit.engine.runstart import claim_run_dir
from cockpit.engine.setup import RunParts, SetupRefused, build_parts, describe_run
from cockpit.engine.side_jobs import SideJobs

__all__ = ["ResumeError", "Trainer", "resolve_resume"]


class Trainer:
    """Trains one run in a background thread. Implements :class:`~cockpit.engine.link.EngineLink`.

    ``hooks`` run on every rank, after the built-in ones (records, evaluation, epoch
    checkpoints: rank 0 only). The diagnostics are one such hook, attached by the caller.
    """

    def __init__(
        self,
        config: Config,
        *,
        resume: str | None = None,
        headless: bool = False,
        injections: list[Injection] | None = None,
        hooks: list[Hook] | None = None,
        preflight: dict | None = None,
        dist: DistContext = SINGLE,
    ):
        self.dist = dist
        self.is_main = dist.is_main
        self.is_headless = headless
        self._state = RunState.IDLE
        self._thread: threading.Thread | None = None
        self.failure_reason = ""
        # Progress, saved in checkpoints.
        self.iteration = 0
        self.epoch = 0
        """Epochs completed (0-based index of the epoch in progress)."""
        self.epoch_iter = 0
        self.accumulation = 1
        self.best_ap = -1.0
        self.last_good_iteration = 0
        self.iters_per_epoch = 0
        self.total_iters = 0
        self.parts: RunParts | None = None
        """What the run trains with; built in the engine thread (see engine/setup.py)."""
        self._load: LoadMeter | None = None
        """Other processes' CPU use, read once per logged step (engine/cpu.py)."""
        self._last_batch: tuple[list, list] | None = None
        """Under DDP: this rank's previous batch, trained again when a whole batch is unreadable."""

        # Every rank loads the checkpoint; only rank 0 keeps a run directory, locked and
        # validated before anything in it is written (engine/runstart.py).
        resume_dir, self._resume_checkpoint = resolve_resume(config, resume)
        self._folder, resume_state = claim_run_dir(config, resume_dir, self._resume_checkpoint, preflight) if self.is_main else (None, None)
        self._run_dir: Path | None = self._folder.path if self._folder is not None else None
        self._preflight = preflight
        self._bus = EventBus(on_listener_error=self._listener_failed)
        self._writer = rundir.RunDirWriter(self._run_dir) if self._run_dir is not None else None
        if self._writer is not None:
            self._bus.subscribe(self._writer)

        self.live = LiveConfig(config, self.publish, self._run_dir)
        self.control = Control(self)
        self.recovery = Recovery(self, list(injections or []))
        self.side_jobs = SideJobs(self, preflight)
        self.checkpoints = Checkpointer(self, self._run_dir, resume_dir, resume_state)
        # Records, evaluation and checkpoints are rank 0's; hooks the caller passes run on every rank.
        self._hooks: list[Hook] = (default_hooks() if self.is_main else []) + list(hooks or [])

    # -- EngineLink ------------------------------------------------------------------------
    @property
    def state(self) -> RunState:
        return self._state

    @property
    def run_dir(self) -> Path | None:
        """The run directory; None on ranks other than 0, which write nothing."""
        return self._run_dir

    def subscribe(self, listener: Listener) -> None:
        self._bus.subscribe(listener)

    def send(self, command: Command) -> None:
        """Queue a command. In a multi-process run only rank 0's queue is read."""
        self.control.send(command)

    def start(self) -> None:
        if self._thread is not None:
            return
        # Before the thread exists: glibc gives a thread its own arena at its first malloc.
        keep_freed_memory()
        self._thread = threading.Thread(target=self._run, name="cockpit-trainer", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        """True while the engine thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self, timeout: float | None = None, save: bool = True) -> None:
        """Stop at the next boundary (saving unless told not to), wait, flush every listener."""
        if self.is_alive():
            self.send(Stop(save=save, reason="closed"))
            self.join(timeout)
        self._bus.close()
        if self._writer is not None:
            self._writer.close()
        if self._folder is not None:
            self._folder.release()
        # Left open until now, not closed when the thread ends: if rank 0 failed, its cockpit
        # stays up to show why, and the other ranks wait for it instead of failing at once
        # (torchrun would then stop every rank, rank 0's cockpit included).
        if self.parts is not None and self.parts.peers is not None:
            self.parts.release_wrapper()
            gc.collect()
            self.parts.peers.close()
            self.parts.peers = None

    # -- for hooks and collaborators --------------------------------------------------------
    def publish(self, event: Event) -> None:
        if self.is_main:
            self._bus.publish(event)
        elif isinstance(event, RunError):
            # Other ranks are silent, except that an error must be seen somewhere.
            print(f"cockpit[rank {self.dist.rank}]: {event.summary}", file=sys.stderr, flush=True)

    def warn(self, message: str, category: WarningCategory) -> None:
        self.publish(RunWarning(message, iter=self.iteration, category=category))

    @property
    def hooks(self) -> tuple[Hook, ...]:
        return tuple(self._hooks)

    @property
    def config(self) -> Config:
        """The effective config (live changes included); see engine/live_config.py."""
        return self.live.config

    @property
    def lr(self) -> float:
        return self.live.lr

    @property
    def epoch_number(self) -> int:
        """The one definition of "epoch" in every record: the 1-based epoch of the last iteration.

        Before the first iteration it is the epoch about to start; right after an epoch
        ends (an evaluation, its checkpoint) it is still that epoch, not the next one.
        """
        return self.epoch if self.epoch_iter == 0 and self.epoch > 0 else self.epoch + 1

    @property
    def total_epochs(self) -> int:
        """Epochs this run will reach: ``run.epochs``, or fewer when ``run.max_iters`` ends it first."""
        if not self.iters_per_epoch:
            return self.config.run.epochs
        return max(1, -(-self.total_iters // self.iters_per_epoch))

    # The parts, by name, for hooks and tests.
    @property
    def model(self) -> torch.nn.Module:
        return self.parts.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.parts.optimizer

    @property
    def device(self) -> torch.device:
        return self.parts.device

    @property
    def train_set(self) -> Any:
        return self.parts.train_set

    @property
    def val_set(self) -> Any:
        return self.parts.val_set

    @property
    def sampler(self) -> Any:
        return self.parts.sampler

    @property
    def val_loader(self) -> Any:
        return self.parts.val_loader

    @property
    def pause_heartbeat(self) -> float:
        return self.control.pause_heartbeat

    @pause_heartbeat.setter
    def pause_heartbeat(self, seconds: float) -> None:
        self.control.pause_heartbeat = seconds

    @property
    def exchanges(self) -> int:
        """Command exchanges with the other ranks so far (heartbeats during a pause included)."""
        return self.control.exchanges

    def evaluate(self):
        return self.side_jobs.evaluate()

    def save_checkpoint(self, reason: str, best: bool = False, background: bool = False) -> bool:
        """See :meth:`Checkpointer.save <cockpit.engine.checkpointing.Checkpointer.save>`."""
        return self.checkpoints.save(reason, best=best, background=background)

    def set_state(self, state: RunState, reason: str = "") -> None:
        previous = self._state
        if previous is state:
            return
        self._state = state
        self.publish(StateChanged(state=state, previous=previous, reason=reason, iter=self.iteration))

    def call_hooks(self, method: str, *args: Any, fatal: bool = True) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, method)(self, *args)
            except Exception as error:  # noqa: BLE001 - a hook bug must not kill the run
                summary = f"hook {type(hook).__name__}.{method} raised {type(error).__name__}: {error}"
                if fatal:
                    self.recovery.fault(summary, error, FaultCause.HOOK)
                else:
                    self.publish(
                        RunError(summary=summary, traceback=traceback.format_exc(), iter=self.iteration, fatal=False, cause=FaultCause.HOOK)
                    )

    def _listener_failed(self, listener: Listener, error: BaseException) -> None:
        self.recovery.listener_failed(listener, error)

    # -- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        outcome, reason = Outcome.FAILED, ""
        try:
            self._setup()
            self.set_state(RunState.RUNNING, "started")
            self.call_hooks("before_train")
            outcome, reason = self._train()
        except (_RunFailed, SetupRefused) as failure:
            reason = str(failure)
        except BaseException as error:  # noqa: BLE001 - the thread reports, never dies silently
            reason = f"{type(error).__name__}: {error}"
            self.publish(RunError(summary=reason, traceback=traceback.format_exc(), iter=self.iteration))
        # A run that ends without a final save (a stop without saving, a fault) still
        # waits for the end-of-epoch write in flight, so last.pt is whole when it is over.
        if (unwritten := self.checkpoints.finish_pending()) is not None:
            self.checkpoints.unwritten(unwritten, "the run ends without it")
        failed = outcome is Outcome.FAILED
        if not failed:
            self.call_hooks("after_train", fatal=False)
        self.failure_reason = reason if failed else ""
        final = RunState.FAILED if failed else RunState.FINISHED
        self.set_state(final, reason)
        self.publish(RunFinished(state=final, iter=self.iteration, epoch=self.epoch_number, outcome=outcome, reason=reason))

    def _setup(self) -> None:
        from cockpit.data.fingerprint import dataset_fingerprint

        config = self.config
        self.parts = build_parts(config, self.dist, self._preflight)
        self.live.attach(self.parts.optimizer)
        self._load = LoadMeter()
        resumed_from = None
        if self._resume_checkpoint is not None:
            self.checkpoints.load(self._resume_checkpoint)
            resumed_from = str(self._resume_checkpoint)
        self.parts.wrap_for_peers()
        self.iters_per_epoch = -(-self.parts.sampler.per_rank // config.data.batch_size)
        total = config.run.epochs * self.iters_per_epoch
        self.total_iters = min(total, config.run.max_iters) if config.run.max_iters else total
        self.publish(
            RunStarted(
                run_dir=str(self._run_dir),
                config=config_to_dict(self.config),
                environment=describe_run(self.parts, config, self.dist),
                start_iter=self.iteration,
                start_epoch=self.epoch + 1,
                total_iters=self.total_iters,
                iters_per_epoch=self.iters_per_epoch,
                resumed_from=resumed_from,
                dataset=dataset_fingerprint(
                    config, len(self.train_set), len(self.val_set) if self.val_set is not None else None
                ),
                total_epochs=self.total_epochs,
                # The LR the first step will use (warm-up included): front-ends show it from the start.
                lr=self.live.schedule.lr(self.iteration + 1, self.epoch),
            )
        )
        self.side_jobs.publish_preflight()
        self.checkpoints.warn_if_disk_nearly_full()
        if self.val_set is not None and len(self.val_set) > 0:
            from cockpit.engine.preview import first_with_objects

            # The first preview is an image with something to box (the sample's val #0 has none).
            self.side_jobs.publish_preview(first_with_objects(self.val_set), predict=self._resume_checkpoint is not None)

    # -- the loop -------------------------------------------------------------------------
    def _train(self) -> tuple[Outcome, str]:
        config = self.config
        while self.epoch < config.run.epochs:
            self.live.follow_schedule(self.iteration, self.epoch, announce=True)
            self.parts.sampler.set_epoch(self.epoch, start=self.epoch_iter * config.data.batch_size)
            batches = iter(self.parts.train_loader)
            while True:
                if self.control.at_boundary():
                    return self._finish_stopped()
                if config.run.max_iters and self.iteration >= config.run.max_iters:
                    return self._finish_complete()
                started = time.perf_counter()
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                data_time = time.perf_counter() - started
                self._iteration(batch, data_time, started)
            self.epoch += 1
            self.epoch_iter = 0
            self.call_hooks("after_epoch", self.epoch)
        return self._finish_complete()

    def _finish_complete(self) -> tuple[Outcome, str]:
        self.set_state(RunState.STOPPING, "training complete")
        if self.val_set is not None and self.side_jobs.last_eval_iter != self.iteration:
            # A side job failing at the end (a val file gone, pycocotools choking) must not
            # cost the run its final checkpoint: the weights are what the user came for.
            try:
                self.evaluate()
            except Exception as error:  # noqa: BLE001 - reported, then the checkpoint is still written
                self.warn(f"final evaluation skipped ({type(error).__name__}: {error}); last.pt is still written", WarningCategory.SIDE_JOB_FAILED)
        if not self.checkpoints.save("final") and self.checkpoints.error:
            raise _RunFailed(self.checkpoints.error)
        return Outcome.FINISHED, "training complete"

    def _finish_stopped(self) -> tuple[Outcome, str]:
        stop = self.control.stop
        assert stop is not None
        label = f"failure: {stop.reason}" if stop.failure else stop.reason
        self.set_state(RunState.STOPPING, f"stop requested ({label})")
        if stop.save and not self.checkpoints.save(f"stop ({label})") and self.checkpoints.error:
            raise _RunFailed(self.checkpoints.error)
        self.publish(CommandAck(command=stop.name, iter=self.iteration))
        if stop.failure:
            raise _RunFailed(stop.reason)
        return Outcome.STOPPED, stop.reason

    def _iteration(self, batch, data_time: float, started: float) -> None:
        images, targets, skipped = batch.images, batch.targets, batch.skipped
        for sample in skipped:
            self.publish(
                RunWarning(
                    f"skipped unreadable sample {sample.index} ({sample.path}): {sample.message}",
                    iter=self.iteration,
                    category=WarningCategory.SKIPPED_SAMPLE,
                    details={"index": sample.index, "path": sample.path, "error": sample.message},
                )
            )
        self.epoch_iter += 1
        if self.parts.peers is not None:
            images, targets = self._batch_for_every_rank(images, targets)
        if not images:
            return
        self.iteration += 1
        self.call_hooks("before_step")
        self.live.follow_schedule(self.iteration, self.epoch, announce=False)
        device = self.device
        images = [image.to(device, non_blocking=True) for image in images]
        device_targets = [
            {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in t.items()} for t in targets
        ]
        result = self.recovery.step(images, device_targets)
        if result is None:
            return
        outcome = StepOutcome(
            iter=self.iteration,
            epoch=self.epoch_number,
            losses=result.losses,
            loss=result.loss,
            lr=self.lr,
            grad_norm=result.grad_norm,
            iter_time=time.perf_counter() - started,
            data_time=data_time,
            batch_size=len(images),
            accumulation=self.accumulation,
            finite=result.finite,
            image_ids=[int(t["image_id"]) for t in targets if "image_id" in t],
            boxes_per_image=[int(t["boxes"].shape[0]) for t in targets],
            amp_scale=float(self.parts.scaler.get_scale()) if self.parts.amp else None,
            cpu=self._cpu_sample() if self.iteration % self.config.run.log_every == 0 else None,
            labels=result.labels,
        )
        self.call_hooks("after_step", outcome)
        self.recovery.after_step(outcome)

    def _cpu_sample(self) -> dict[str, float] | None:
        """Cores other processes kept busy since the last logged step, with what torch uses."""
        others = self._load.others() if self._load is not None else None
        if others is None:
            return None
        return {"cpu_others": round(others, 3), "cpu_cores": float(usable_cores()), "torch_threads": float(torch.get_num_threads())}

    def _batch_for_every_rank(self, images: list, targets: list) -> tuple[list, list]:
        """A rank whose whole batch was unreadable trains on its previous batch again.

        Skipping would leave the other ranks waiting in the step's collectives; one repeated
        batch on one rank is the smaller harm.
        """
        if images:
            self._last_batch = (images, targets)
            return images, targets
        if self._last_batch is None:
            raise _RunFailed(f"rank {self.dist.rank}: every sample of its first batch was unreadable")
        self.warn(f"rank {self.dist.rank}: no readable sample in this batch; repeating its previous batch", WarningCategory.SKIPPED_SAMPLE)
        return self._last_batch


class _RunFailed(Exception):
    """Raised inside the thread to end the run as FAILED with a one-line reason."""

