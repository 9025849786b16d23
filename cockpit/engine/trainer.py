"""The trainer: a background thread that trains, obeys commands and publishes events.

State machine: IDLE -> RUNNING <-> PAUSED -> STOPPING -> FINISHED | FAILED.

Commands go into a priority queue (``Stop`` first) that the loop drains at every
iteration boundary, so a command takes effect before the next iteration starts. Pause
blocks on a condition variable until the next command arrives -- no polling. Exceptions
never escape the thread: a fault in a step, a hook or a listener becomes an event, and the
run pauses (interactive) or stops with a checkpoint of the last good state (headless).

In a multi-process run (``torchrun``) every rank runs a trainer; rank 0's queue is the
only one read, and what it drains is broadcast so every rank applies the same commands at
the same boundary (``engine/distributed.py``). Only rank 0 publishes events and writes
the run directory, checkpoints and evaluations.
"""

from __future__ import annotations

import copy
import gc
import itertools
import queue
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cockpit.config import LIVE_FIELDS, Config, ConfigError, dump_config
from cockpit.config.loader import config_to_dict
from cockpit.engine import checkpoint as ckpt
from cockpit.engine import rundir
from cockpit.engine.bus import EventBus, Listener
from cockpit.engine.commands import (
    ApplyPatch,
    Command,
    EvaluateNow,
    Pause,
    RequestPreview,
    Resume,
    RewindSkip,
    SaveCheckpoint,
    ScaleLR,
    SetLR,
    Stop,
    command_from_dict,
)
from cockpit.engine.distributed import PAUSE_HEARTBEAT_S, SINGLE, DistContext
from cockpit.engine.environment import describe, resolve_device
from cockpit.engine.events import (
    CheckpointSaved,
    CommandAck,
    EvalResult,
    Event,
    LRChanged,
    LRSource,
    RunError,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    StateChanged,
)
from cockpit.engine.faults import Injection
from cockpit.engine.hooks import Hook, StepOutcome
from cockpit.engine.runstart import claim_run_dir
from cockpit.engine.schedule import LRSchedule
from cockpit.engine.step import train_step
from cockpit.runfiles import write_atomic

MAX_OOM_RETRIES = 3
MAX_AUTO_REWINDS = 3
SNAPSHOT_EVERY = 50


class ResumeError(Exception):
    """``--resume`` names nothing usable; the message says what was looked for."""


@dataclass(frozen=True)
class _Snapshot:
    iteration: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]


def _cpu_copy(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _cpu_copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cpu_copy(v) for v in state)
    return copy.deepcopy(state)


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


class Trainer:
    """Trains one run in a background thread. Implements :class:`~cockpit.engine.link.EngineLink`."""

    def __init__(
        self,
        config: Config,
        *,
        resume: str | None = None,
        headless: bool = False,
        injections: list[Injection] | None = None,
        hooks: list[Hook] | None = None,
        diagnostics: bool = True,
        preflight: dict | None = None,
        dist: DistContext = SINGLE,
    ):
        self.config = config
        self.dist = dist
        self.is_main = dist.is_main
        self.is_headless = headless
        self.injections = list(injections or [])
        self._hooks: list[Hook] = []
        self._bus = EventBus(on_listener_error=self._listener_failed)
        self._listener_errors: dict[int, int] = {}
        self._commands: queue.PriorityQueue = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self._state = RunState.IDLE
        self._stop: Stop | None = None
        self._thread: threading.Thread | None = None
        self._pending_rewind = False
        self._peers = None
        self._train_model: torch.nn.Module | None = None
        self._last_batch: tuple[list, list] | None = None
        self.pause_heartbeat = PAUSE_HEARTBEAT_S
        self.exchanges = 0
        """Command exchanges with the other ranks so far (heartbeats during a pause included)."""

        # Every rank loads the checkpoint; only rank 0 keeps a run directory.
        resume_dir, self._resume_checkpoint = resolve_resume(config, resume)
        self._run_dir: Path | None = None
        self._writer: rundir.RunDirWriter | None = None
        self._folder = None
        self._resume_state: dict | None = None
        if self.is_main:
            # Locked and validated before anything in the folder is written (engine/runstart.py).
            self._folder, self._resume_state = claim_run_dir(config, resume_dir, self._resume_checkpoint, preflight)
            self._run_dir = self._folder.path
            self._writer = rundir.RunDirWriter(self._run_dir)
            self._bus.subscribe(self._writer)

        self.iteration = 0
        self.epoch = 0
        self.epoch_iter = 0
        self.accumulation = 1
        self.best_ap = -1.0
        self.evaluations = 0
        self.last_good_iteration = 0
        self._snapshot: _Snapshot | None = None
        self._oom_retries_total = 0
        self._auto_rewinds = 0
        self.failure_reason = ""

        from cockpit.engine.builtin_hooks import default_hooks

        # Records, evaluation, checkpoints and diagnostics are rank 0's; hooks the caller
        # passes run on every rank.
        if self.is_main:
            self._hooks.extend(default_hooks())
        if diagnostics and self.is_main:
            try:
                from cockpit.diagnostics.hook import DiagnosticsHook

                self._hooks.append(DiagnosticsHook())
            except ImportError:  # pragma: no cover - the diagnostics package is part of cockpit
                pass
        self._hooks.extend(hooks or [])
        self._preflight = preflight

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
        with self._cond:
            self._commands.put((command.priority, next(self._sequence), command))
            self._cond.notify_all()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="cockpit-trainer", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self, timeout: float | None = None, save: bool = True) -> None:
        """Stop at the next boundary (saving unless told not to), wait, flush every listener."""
        if self._thread is not None and self._thread.is_alive():
            self.send(Stop(save=save, reason="closed"))
            self._thread.join(timeout)
        self._bus.close()
        if self._writer is not None:
            self._writer.close()
        if self._folder is not None:
            self._folder.release()
        # Left open until now, not closed when the thread ends: if rank 0 failed, its cockpit
        # stays up to show why, and the other ranks wait for it instead of failing at once
        # (torchrun would then stop every rank, rank 0's cockpit included).
        if self._peers is not None:
            # DDP's reducer keeps the group's last collective work objects (tensors with
            # Python references). Left alive past destroy_process_group, they are freed
            # during interpreter shutdown, where gloo's threads then abort the process.
            self._train_model = self.model
            gc.collect()
            self._peers.close()
            self._peers = None

    # -- for hooks ------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        if self.is_main:
            self._bus.publish(event)
        elif isinstance(event, RunError):
            # Other ranks are silent, except that an error must be seen somewhere.
            print(f"cockpit[rank {self.dist.rank}]: {event.summary}", file=sys.stderr, flush=True)

    @property
    def hooks(self) -> tuple[Hook, ...]:
        return tuple(self._hooks)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        outcome, reason = "failed", ""
        try:
            self._setup()
            self._set_state(RunState.RUNNING, "started")
            self._call_hooks("before_train")
            outcome, reason = self._train()
        except _RunFailed as failure:
            reason = str(failure)
        except BaseException as error:  # noqa: BLE001 - the thread reports, never dies silently
            reason = f"{type(error).__name__}: {error}"
            self.publish(RunError(summary=reason, traceback=traceback.format_exc(), iter=self.iteration))
        final = RunState.FAILED if outcome == "failed" else RunState.FINISHED
        if outcome != "failed":
            self._call_hooks("after_train", fatal=False)
        self.failure_reason = reason if outcome == "failed" else ""
        self._set_state(final, reason)
        self.publish(RunFinished(state=final, iter=self.iteration, epoch=self.epoch + 1, outcome=outcome, reason=reason))

    def _setup(self) -> None:
        from cockpit.data.fingerprint import dataset_fingerprint
        from cockpit.data.loader import build_dataset
        from cockpit.engine.model import build_model

        from cockpit.engine import distributed

        config = self.config
        # Ranks draw different augmentations; the weights still start equal (DDP copies
        # rank 0's when it wraps the model).
        self._seed_everything(config.run.seed + self.dist.rank)
        self.device = distributed.select_device(self.dist, resolve_device(config.run.device))
        self._peers = distributed.connect(self.dist, self.device)
        self.amp = config.optim.amp and self.device.type == "cuda"
        self.train_set = build_dataset(config, "train", train=True)
        self.val_set = build_dataset(config, "val", train=False) if config.data.val else None
        self.train_loader, self.sampler = self._make_train_loader()
        self._refuse_empty_training_set()
        self.val_loader = self._make_val_loader() if self.val_set is not None else None
        self.model = build_model(config).to(self.device)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            params, lr=config.optim.lr, momentum=config.optim.momentum, weight_decay=config.optim.weight_decay
        )
        self.schedule = LRSchedule(config.optim.lr, config.optim.warmup_iters, config.optim.step_size, config.optim.gamma)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        resumed_from = None
        if self._resume_checkpoint is not None:
            self._load_checkpoint(self._resume_checkpoint)
            resumed_from = str(self._resume_checkpoint)
        # The step trains through the DDP wrapper; evaluation, previews, snapshots and
        # checkpoints use the bare module, so a checkpoint has torchvision's own keys.
        self._train_model = distributed.wrap(self.model, self.device) if self._peers is not None else self.model
        self.iters_per_epoch = -(-self.sampler.per_rank // config.data.batch_size)
        total = config.run.epochs * self.iters_per_epoch
        self.total_iters = min(total, config.run.max_iters) if config.run.max_iters else total
        environment = describe(self.device)
        from cockpit.engine.model import describe_model

        environment["model"] = describe_model(self.model)
        environment["world_size"] = self.dist.world_size
        environment["global_batch"] = config.data.batch_size * self.dist.world_size
        self.publish(
            RunStarted(
                run_dir=str(self._run_dir),
                config=config_to_dict(config),
                environment=environment,
                start_iter=self.iteration,
                start_epoch=self.epoch + 1,
                total_iters=self.total_iters,
                iters_per_epoch=self.iters_per_epoch,
                resumed_from=resumed_from,
                dataset=dataset_fingerprint(
                    config, len(self.train_set), len(self.val_set) if self.val_set is not None else None
                ),
            )
        )
        self._publish_preflight()
        self._warn_if_disk_nearly_full()
        if self.val_set is not None and len(self.val_set) > 0:
            from cockpit.engine.preview import first_with_objects

            self.publish_preview(first_with_objects(self.val_set), predict=self._resume_checkpoint is not None)

    def _refuse_empty_training_set(self) -> None:
        # Otherwise it "trains" empty epochs, evaluates and checkpoints an untrained model.
        if self.sampler.size == 0:
            left_out = len(self.train_set) - self.sampler.size
            raise _RunFailed(
                f"the training set ({self.config.data.train}) has no images"
                + (f" that can be read ({left_out} unreadable)" if left_out else "") + "; nothing to train on"
            )

    def _publish_preflight(self) -> None:
        """The pre-flight verdicts as flag events, so the checklist shows them from the start."""
        from cockpit.engine.events import FlagRaised, Severity

        verdicts = (self._preflight or {}).get("verdicts", [])
        # One row per rule in the checklist: a flagged split must not be hidden by a clean one.
        for verdict in sorted(verdicts, key=lambda v: v.get("state") == "FLAGGED"):
            split = verdict.get("split")
            self.publish(
                FlagRaised(
                    rule=verdict["rule"],
                    title=verdict.get("title", verdict["rule"]),
                    status=verdict.get("state", "OK"),
                    severity=Severity(verdict.get("severity") or "info"),
                    evidence=(f"[{split}] " if split else "") + (verdict.get("evidence") or ""),
                    likely_cause=verdict.get("likely_cause") or "",
                    fix=verdict.get("fix") or "",
                    iter=self.iteration,
                )
            )

    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _make_train_loader(self):
        from torch.utils.data import DataLoader

        from cockpit.data.loader import SkippingDataset, collate_skipping, excluded_indices, seed_worker
        from cockpit.engine.sampler import EpochSampler

        config = self.config
        # Our own sampler (not shuffle=True) so a resumed run continues mid-epoch exactly.
        sampler = EpochSampler(
            len(self.train_set), shuffle=True, seed=config.run.seed, rank=self.dist.rank, world_size=self.dist.world_size,
            exclude=excluded_indices(self._preflight, "train"),
        )
        loader = DataLoader(
            SkippingDataset(self.train_set),
            batch_size=config.data.batch_size,
            sampler=sampler,
            num_workers=config.data.num_workers,
            collate_fn=collate_skipping,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=seed_worker if config.data.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(config.run.seed),
        )
        return loader, sampler

    def _make_val_loader(self):
        from torch.utils.data import DataLoader

        from cockpit.data.loader import SkippingDataset, collate_skipping

        return DataLoader(
            SkippingDataset(self.val_set),
            # Not the train batch: a batch is padded to one canvas, so AP would depend on it.
            batch_size=self.config.eval.batch_size,
            shuffle=False,
            num_workers=min(self.config.data.num_workers, 2),
            collate_fn=collate_skipping,
            pin_memory=self.device.type == "cuda",
        )

    # -- the loop -------------------------------------------------------------------------
    def _train(self) -> tuple[str, str]:
        config = self.config
        while self.epoch < config.run.epochs:
            self._apply_schedule(announce=True)
            self.sampler.set_epoch(self.epoch, start=self.epoch_iter * config.data.batch_size)
            batches = iter(self.train_loader)
            while True:
                if self._at_boundary():
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
            self._call_hooks("after_epoch", self.epoch)
        return self._finish_complete()

    def _finish_complete(self) -> tuple[str, str]:
        self._set_state(RunState.STOPPING, "training complete")
        if self.val_set is not None and self._last_eval_iter != self.iteration:
            # A side job failing at the end (a val file gone, pycocotools choking) must not
            # cost the run its final checkpoint: the weights are what the user came for.
            try:
                self.evaluate()
            except Exception as error:  # noqa: BLE001 - reported, then the checkpoint is still written
                self.publish(RunWarning(
                    f"final evaluation skipped ({type(error).__name__}: {error}); last.pt is still written",
                    iter=self.iteration, category="side_job_failed",
                ))
        if not self.save_checkpoint("final") and self.checkpoint_error:
            raise _RunFailed(self.checkpoint_error)
        return "finished", "training complete"

    def _finish_stopped(self) -> tuple[str, str]:
        stop = self._stop
        assert stop is not None
        self._set_state(RunState.STOPPING, f"stop requested ({stop.reason})")
        if stop.save and not self.save_checkpoint(f"stop ({stop.reason})") and self.checkpoint_error:
            raise _RunFailed(self.checkpoint_error)
        self.publish(CommandAck(command=stop.name, iter=self.iteration))
        if stop.reason.startswith("failure:"):
            raise _RunFailed(stop.reason[len("failure:") :].strip())
        return "stopped", stop.reason

    _last_eval_iter = -1

    def _iteration(self, batch, data_time: float, started: float) -> None:
        images, targets, skipped = batch.images, batch.targets, batch.skipped
        for sample in skipped:
            self.publish(
                RunWarning(
                    f"skipped unreadable sample {sample.index} ({sample.path}): {sample.message}",
                    iter=self.iteration,
                    category="skipped_sample",
                    details={"index": sample.index, "path": sample.path, "error": sample.message},
                )
            )
        self.epoch_iter += 1
        if self._peers is not None:
            images, targets = self._batch_for_every_rank(images, targets)
        if not images:
            return
        self.iteration += 1
        self._call_hooks("before_step")
        self._apply_schedule(announce=False)
        images = [image.to(self.device, non_blocking=True) for image in images]
        device_targets = [
            {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
            for t in targets
        ]
        result = self._step_with_oom_recovery(images, device_targets)
        if result is None:
            return
        outcome = StepOutcome(
            iter=self.iteration,
            epoch=self.epoch + 1,
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
            amp_scale=float(self.scaler.get_scale()) if self.amp else None,
        )
        self._call_hooks("after_step", outcome)
        if result.finite:
            self.last_good_iteration = self.iteration
            if self._snapshot is None or self.iteration - self._snapshot.iteration >= SNAPSHOT_EVERY:
                self._take_snapshot()
        else:
            self._on_nonfinite(outcome)

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
        self.publish(
            RunWarning(
                f"rank {self.dist.rank}: no readable sample in this batch; repeating its previous batch",
                iter=self.iteration,
                category="skipped_sample",
            )
        )
        return self._last_batch

    def _step_with_oom_recovery(self, images, targets):
        injections = [i for i in self.injections if i.iteration == self.iteration and not i.fired]
        # Under DDP every rank must make the same retry decision, so it rests on the
        # configured batch size rather than on how many samples this rank could read.
        batch_size = self.config.data.batch_size if self._peers is not None else len(images)
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
                    self._train_model,
                    self.optimizer,
                    self.scaler,
                    images,
                    targets,
                    accumulation=self.accumulation,
                    grad_clip=self.config.optim.grad_clip,
                    amp=self.amp,
                    device_type=self.device.type,
                    poison=poison,
                    fail=fail,
                    peers=self._peers,
                )
            except torch.cuda.OutOfMemoryError as error:
                if not self._recover_oom(error, batch_size, attempt):
                    return None
        return None

    def _recover_oom(self, error: BaseException, batch_size: int, attempt: int) -> bool:
        """Free memory, halve the micro-batch (doubling accumulation); False when out of options."""
        facts = {
            "iter": self.iteration,
            "batch_size": batch_size,
            "micro_batch": -(-batch_size // self.accumulation),
            "accumulation": self.accumulation,
            "image_size": self.config.model.min_size,
            "error": str(error).splitlines()[0][:300],
        }
        facts.update(self._memory_facts())
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self._notify_hooks_oom(facts)
        can_halve = self.accumulation < batch_size and attempt < MAX_OOM_RETRIES
        if can_halve:
            self.accumulation *= 2
            self._oom_retries_total += 1
            self.publish(
                RunWarning(
                    f"CUDA OOM at iteration {self.iteration}: retrying with micro-batch "
                    f"{-(-batch_size // self.accumulation)} x {self.accumulation} accumulation steps",
                    iter=self.iteration,
                    category="oom_retry",
                    details=facts | {"new_accumulation": self.accumulation},
                )
            )
            return True
        self.iteration -= 1
        self._fault("CUDA out of memory and the batch cannot be split further", error)
        return False

    def _memory_facts(self) -> dict[str, float]:
        from cockpit.engine.memory import sample

        return sample(self.device)

    def _notify_hooks_oom(self, facts: dict) -> None:
        for hook in self._hooks:
            handler = getattr(hook, "on_oom", None)
            if handler is not None:
                verdict = handler(facts)
                if verdict is not None and hasattr(verdict, "to_event"):
                    self.publish(verdict.to_event(self.iteration))

    # -- non-finite loss -------------------------------------------------------------------
    def _take_snapshot(self) -> None:
        self._snapshot = _Snapshot(
            iteration=self.iteration,
            model=_cpu_copy(self.model.state_dict()),
            optimizer=_cpu_copy(self.optimizer.state_dict()),
        )

    def _on_nonfinite(self, outcome: StepOutcome) -> None:
        bad = [name for name, value in outcome.losses.items() if not np.isfinite(value)] or ["grad_norm"]
        summary = f"non-finite loss at iteration {outcome.iter} ({', '.join(bad)}); the optimizer step was skipped"
        if self.is_headless:
            if self._auto_rewinds >= MAX_AUTO_REWINDS:
                # Back to the last good state, so the stop's checkpoint keeps something usable.
                self._restore_snapshot()
                self._request_failure(f"loss still non-finite after {MAX_AUTO_REWINDS} rewinds with LR x0.1")
                return
            self._auto_rewinds += 1
            self.publish(RunWarning(summary, iter=outcome.iter, category="nonfinite"))
            self._rewind(lr_factor=0.1, grad_clip=0.0, who="automatic")
            return
        self.publish(RunError(summary=summary, traceback="", iter=outcome.iter, fatal=False))
        self._set_state(RunState.PAUSED, "non-finite loss")
        self._pending_rewind = True
        if self.train_set is not None and outcome.image_ids:
            self._preview_culprit(outcome.image_ids[0])

    def _restore_snapshot(self) -> None:
        """Back to the last good weights and optimizer state, keeping the current LR."""
        snapshot = self._snapshot
        if snapshot is None:
            return
        # The snapshot's optimizer state carries the LR of that older iteration; keep the
        # current one so that successive rewinds compound (x0.1, then x0.01, ...).
        current_lr = self.lr
        self.model.load_state_dict(snapshot.model)
        self.optimizer.load_state_dict(snapshot.optimizer)
        for group in self.optimizer.param_groups:
            group["lr"] = current_lr

    def _rewind(self, lr_factor: float, grad_clip: float, who: str) -> None:
        snapshot = self._snapshot
        self._restore_snapshot()
        if lr_factor != 1.0:
            self._set_lr(self.lr * lr_factor, LRSource.RECOVERY)
        if grad_clip > 0:
            self.config = self.config.copy_with({"optim.grad_clip": grad_clip})
        restored = snapshot.iteration if snapshot else "the initial weights"
        self.publish(
            RunWarning(
                f"rewound to the state of iteration {restored} and skipped the bad batch ({who}); "
                f"LR x{lr_factor:g}" + (f", grad_clip={grad_clip:g}" if grad_clip > 0 else ""),
                iter=self.iteration,
                category="nan_rewind",
                details={"restored_iter": snapshot.iteration if snapshot else 0, "lr_factor": lr_factor},
            )
        )
        self._pending_rewind = False

    def _preview_culprit(self, image_id: int) -> None:
        try:
            index = self.train_set.index_of_image_id(image_id)
            if index is not None:
                self.publish_preview(index, predict=False, split="train")
        except Exception:  # noqa: BLE001 - a preview must never turn one fault into two
            pass

    # -- faults -------------------------------------------------------------------------
    def _fault(self, summary: str, error: BaseException | None) -> None:
        """Report a fault; pause (interactive) or stop with the last good state (headless)."""
        text = "".join(traceback.format_exception(error)) if error is not None else ""
        self.publish(RunError(summary=summary, traceback=text, iter=self.iteration, fatal=self.is_headless))
        if self.is_headless:
            self._request_failure(summary)
        else:
            self._set_state(RunState.PAUSED, summary)

    def _request_failure(self, reason: str) -> None:
        self.failure_reason = reason
        self.send(Stop(save=True, reason=f"failure: {reason}"))

    def _listener_failed(self, listener: Listener, error: BaseException) -> None:
        count = self._listener_errors.get(id(listener), 0) + 1
        self._listener_errors[id(listener)] = count
        if count <= 3:  # a listener failing on every event must not flood the stream
            self.publish(
                RunWarning(
                    f"listener {getattr(listener, '__qualname__', type(listener).__name__)} raised "
                    f"{type(error).__name__}: {error}" + (" (further errors not reported)" if count == 3 else ""),
                    iter=self.iteration,
                    category="listener_error",
                    details={"traceback": "".join(traceback.format_exception(error))},
                )
            )

    def _call_hooks(self, method: str, *args: Any, fatal: bool = True) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, method)(self, *args)
            except Exception as error:  # noqa: BLE001 - a hook bug must not kill the run
                summary = f"hook {type(hook).__name__}.{method} raised {type(error).__name__}: {error}"
                if fatal:
                    self._fault(summary, error)
                else:
                    self.publish(RunError(summary=summary, traceback=traceback.format_exc(), iter=self.iteration, fatal=False))

    # -- commands -------------------------------------------------------------------------
    def _at_boundary(self) -> bool:
        """Apply queued commands; block while paused. True when the run must stop."""
        self._drain()
        while self._state is RunState.PAUSED and self._stop is None:
            if self.is_main:
                with self._cond:
                    if self._peers is None:
                        while self._commands.empty():
                            self._cond.wait()
                    elif self._commands.empty():
                        # The other ranks wait for this rank in the broadcast of _drain; a
                        # "still paused" round now and then keeps their wait from timing out.
                        self._cond.wait(self.pause_heartbeat)
            self._drain()
        return self._stop is not None

    def _drain(self) -> None:
        """Apply what is queued, round after round, until a round brings nothing.

        Applying a command may queue another (a failing evaluation asks to stop); the next
        round takes it before the iteration starts. With peers, each round is one
        broadcast of rank 0's commands and pause state, so every rank runs the same rounds.
        """
        while True:
            commands = self._take_pending() if self.is_main else []
            if self._peers is not None:
                commands = self._exchange(commands)
            if not commands:
                return
            self._apply_all(commands)
            if self._stop is not None:
                return

    def _take_pending(self) -> list[Command]:
        """Everything queued, in priority order (a Stop first)."""
        taken = []
        while True:
            try:
                _, _, command = self._commands.get_nowait()
            except queue.Empty:
                return taken
            taken.append(command)

    def _exchange(self, commands: list[Command]) -> list[Command]:
        """Rank 0's commands on every rank; the other ranks also take on its pause state."""
        paused, sent = self._peers.broadcast((self._state is RunState.PAUSED, [c.to_dict() for c in commands]))
        self.exchanges += 1
        if self.is_main:
            return commands
        # Rank 0 may have paused on its own (a fault in one of its hooks): follow it, so no
        # rank steps into a collective that rank 0 will not join.
        if paused and self._state is RunState.RUNNING:
            self._set_state(RunState.PAUSED, "paused on rank 0")
        elif not paused and self._state is RunState.PAUSED:
            self._set_state(RunState.RUNNING, "running on rank 0")
        return [command_from_dict(data) for data in sent]

    def _apply_all(self, commands: list[Command]) -> None:
        for position, command in enumerate(commands):
            if isinstance(command, Stop):
                # Stop jumps the queue: what was sent before it is refused, not applied.
                self._stop = self._stop or command
                for refused in commands[position + 1 :]:
                    if not isinstance(refused, Stop):
                        self.publish(CommandAck(command=refused.name, iter=self.iteration, ok=False, message="the run is stopping"))
                return
            try:
                message = self._apply(command)
                self.publish(CommandAck(command=command.name, iter=self.iteration, ok=message is None or message == "", message=message or ""))
            except Exception as error:  # noqa: BLE001 - a bad command is refused, not fatal
                self.publish(CommandAck(command=command.name, iter=self.iteration, ok=False, message=f"{type(error).__name__}: {error}"))

    def _apply(self, command: Command) -> str | None:
        """Apply one command; returns a refusal message, or None when applied."""
        if isinstance(command, Pause):
            if self._state is RunState.RUNNING:
                self._set_state(RunState.PAUSED, f"paused by {command.reason}")
            return None
        if isinstance(command, Resume):
            if self._pending_rewind:
                self._rewind(lr_factor=1.0, grad_clip=0.0, who="resumed by the user")
            if self._state is RunState.PAUSED:
                self._set_state(RunState.RUNNING, "resumed")
            return None
        if isinstance(command, SetLR):
            if not command.lr > 0:
                return f"LR must be > 0 (got {command.lr})"
            self._set_lr(command.lr, LRSource.USER)
            return None
        if isinstance(command, ScaleLR):
            if not command.factor > 0:
                return f"factor must be > 0 (got {command.factor})"
            self._set_lr(self.lr * command.factor, LRSource.USER)
            return None
        if isinstance(command, SaveCheckpoint):
            if self.save_checkpoint("user"):
                return None
            return self.checkpoint_error or "weights are not finite; checkpoint not written"
        if isinstance(command, EvaluateNow):
            if self.val_set is None:
                return "no val split configured (data.val)"
            self.evaluate()
            return None
        if isinstance(command, RequestPreview):
            if self.val_set is None or len(self.val_set) == 0:
                return "no val split configured (data.val)"
            self.publish_preview(command.index % len(self.val_set), predict=command.predict)
            return None
        if isinstance(command, ApplyPatch):
            return self._apply_patch(command.changes)
        if isinstance(command, RewindSkip):
            self._rewind(command.lr_factor, command.grad_clip, who="user")
            if self._state is RunState.PAUSED:
                self._set_state(RunState.RUNNING, "resumed after rewind")
            return None
        return f"unknown command {command.name!r}"

    def _apply_patch(self, changes: dict[str, Any]) -> str | None:
        refused = sorted(set(changes) - LIVE_FIELDS)
        if refused:
            return f"cannot change while running (needs a restart): {', '.join(refused)}"
        try:
            new_config = self.config.copy_with(changes)
        except Exception as error:  # noqa: BLE001 - pydantic's ValidationError
            return f"invalid value: {str(error).splitlines()[0]}"
        self.config = new_config
        optim = new_config.optim
        if "optim.lr" in changes:
            self._set_lr(optim.lr, LRSource.USER)
        for group in self.optimizer.param_groups:
            group["momentum"] = optim.momentum
            group["weight_decay"] = optim.weight_decay
        if "augment.hflip" in changes or "augment.photometric" in changes:
            from cockpit.data.transforms import set_augment_probabilities

            set_augment_probabilities(
                self.train_set.transform, hflip=new_config.augment.hflip, photometric=new_config.augment.photometric
            )
        if self._run_dir is not None:
            write_atomic(self._run_dir / rundir.CONFIG, dump_config(new_config))
        return None

    # -- LR -------------------------------------------------------------------------------
    def _apply_schedule(self, announce: bool) -> None:
        lr = self.schedule.lr(max(self.iteration, 1), self.epoch)
        previous = self.lr
        if lr != previous:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            # Warm-up moves the LR every iteration; announce only the epoch steps.
            if announce and self.iteration > 0 and abs(lr - previous) > 1e-12 * max(lr, previous):
                self.publish(LRChanged(iter=self.iteration, lr=lr, previous=previous, source=LRSource.SCHEDULE))

    def _set_lr(self, lr: float, source: LRSource) -> None:
        previous = self.lr
        self.schedule.set_current(lr, max(self.iteration, 1), self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.publish(LRChanged(iter=self.iteration, lr=lr, previous=previous, source=source))

    # -- state -----------------------------------------------------------------------------
    def _set_state(self, state: RunState, reason: str = "") -> None:
        previous = self._state
        if previous is state:
            return
        self._state = state
        self.publish(StateChanged(state=state, previous=previous, reason=reason, iter=self.iteration))

    # -- evaluation, previews, checkpoints ---------------------------------------------------
    def evaluate(self) -> EvalResult | None:
        import json

        from cockpit.engine.evaluation import evaluate

        # Rank 0 evaluates alone; the other ranks wait for it in their next collective.
        if self.val_set is None or self.val_loader is None or not self.is_main:
            return None
        evaluation = evaluate(self.model, self.val_loader, self.val_set, self.device, self.config.eval.score_thresh)
        self.evaluations += 1
        self._last_eval_iter = self.iteration
        for path, message in evaluation.skipped:
            self.publish(RunWarning(f"evaluation skipped unreadable val image {path}: {message}", iter=self.iteration,
                                    category="skipped_sample", details={"path": path, "error": message}))
        predictions = self._run_dir / rundir.PREDICTIONS / f"eval-iter{self.iteration:06d}.json"
        predictions.parent.mkdir(exist_ok=True)
        write_atomic(predictions, json.dumps(evaluation.results))
        result = EvalResult(
            iter=self.iteration,
            epoch=self.epoch + 1,
            metrics=evaluation.metrics,
            per_class=evaluation.per_class,
            detections_per_image=evaluation.detections_per_image,
            images_without_detections=evaluation.images_without_detections,
            num_images=evaluation.num_images,
            score_histogram=evaluation.score_histogram,
            predictions_path=str(predictions),
            seconds=evaluation.seconds,
        )
        self.publish(result)
        extra = {"raw_scores": evaluation.raw_scores, "pred_boxes": evaluation.sample_boxes}
        self._call_hooks("after_eval", result, extra)
        ap = evaluation.metrics.get("AP", -1.0)
        if ap > self.best_ap:
            self.best_ap = ap
            self.save_checkpoint(f"best AP {ap:.3f}", best=True)
        if len(self.val_set) > 0:
            self.publish_preview(self._preview_index, predict=True)
        return result

    _preview_index = 0

    def publish_preview(self, index: int, predict: bool, split: str = "val") -> None:
        from cockpit.engine.preview import make_preview

        if not self.is_main:
            return
        dataset = self.val_set if split == "val" else self.train_set
        if split == "val":
            self._preview_index = index
        try:
            event = make_preview(
                self.model if predict else None,
                dataset,
                index,
                device=self.device,
                iteration=self.iteration,
                score_thresh=self.config.eval.score_thresh,
                out_dir=self._run_dir / rundir.PREVIEWS,
                split=split,
            )
        except Exception as error:  # noqa: BLE001 - a preview is a side job: skip and name it, as the loaders do
            path = dataset.image_path(index) if hasattr(dataset, "image_path") else None
            self.publish(RunWarning(
                f"preview of {split} #{index} skipped ({path or 'no path'}): {type(error).__name__}: {error}",
                iter=self.iteration, category="skipped_sample",
                details={"index": index, "path": path, "error": f"{type(error).__name__}: {error}"},
            ))
            return
        self.publish(event)

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "epoch_iter": self.epoch_iter,
            "iteration": self.iteration,
            "accumulation": self.accumulation,
            "best_ap": self.best_ap,
            "config": dump_config(self.config),
            "args": config_to_dict(self.config),
            "classes": list(self.config.data.classes),
            "label_to_category": {int(k): int(v) for k, v in self.train_set.label_to_category.items()},
            "rng": {"torch": torch.get_rng_state()},
        }

    def save_checkpoint(self, reason: str, best: bool = False) -> bool:
        """Write ``last.pt`` (and ``best.pt``); refuses non-finite weights. Rank 0 only."""
        if not self.is_main:
            return True
        if not ckpt.all_finite(self.model):
            self.publish(
                RunWarning("weights are not finite: checkpoint NOT written", iter=self.iteration, category="checkpoint_refused")
            )
            return False
        state = self.checkpoint_state()
        directory = self._run_dir / rundir.CHECKPOINTS
        try:
            path = ckpt.save_atomic(state, directory / (rundir.BEST if best else rundir.LAST))
        except ckpt.CheckpointError as error:
            self._checkpoint_failed(str(error))
            return False
        self.checkpoint_error = ""
        self.publish(CheckpointSaved(iter=self.iteration, epoch=self.epoch + 1, path=str(path), reason=reason, best=best))
        return True

    checkpoint_error = ""
    """Why the latest checkpoint could not be written (disk full...); empty after a good save."""

    def _checkpoint_failed(self, reason: str) -> None:
        """A full disk pauses the run (the user frees space and resumes) or stops a headless
        one without another write; the previous checkpoint stays as it was."""
        self.checkpoint_error = reason
        self.publish(RunError(summary=reason, traceback="", iter=self.iteration, fatal=self.is_headless))
        if self.is_headless:
            self.failure_reason = reason
            self.send(Stop(save=False, reason=f"failure: {reason}"))
        elif self._state is RunState.RUNNING:
            self._set_state(RunState.PAUSED, reason)

    def _warn_if_disk_nearly_full(self) -> None:
        if self._run_dir is not None:
            flag = ckpt.nearly_full_flag(self._run_dir, ckpt.tensor_bytes(self.model.state_dict()), self.iteration)
            if flag is not None:
                self.publish(flag)

    def _load_checkpoint(self, path: Path) -> None:
        # Rank 0 already loaded (and checked) it before claiming the run folder.
        state, self._resume_state = self._resume_state or ckpt.load(path, map_location=self.device), None
        if ckpt.is_references(state):
            iters_per_epoch = -(-self.sampler.per_rank // self.config.data.batch_size)
            state, notes = ckpt.from_references(state, iters_per_epoch, self.schedule.state_dict())
            for note in notes:
                self.publish(RunWarning(note, iter=0, category="foreign_checkpoint"))
        try:
            self.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError) as error:
            raise ckpt.CheckpointError(f"{path} does not fit this model (arch or classes changed?): {error}") from None
        if "optimizer" in state:
            try:
                self.optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as error:  # other parameter groups (e.g. --norm-weight-decay)
                self.publish(RunWarning(f"optimizer state not loaded ({error}); momentum starts afresh",
                                        iter=0, category="foreign_checkpoint"))
        if "lr_scheduler" in state and isinstance(state["lr_scheduler"], dict) and "base_lr" in state["lr_scheduler"]:
            self.schedule.load_state_dict(state["lr_scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state.get("epoch", 0))
        self.epoch_iter = int(state.get("epoch_iter", 0))
        self.iteration = int(state.get("iteration", 0))
        self.accumulation = int(state.get("accumulation", 1))
        self.best_ap = float(state.get("best_ap", -1.0))
        self.last_good_iteration = self.iteration
        # Rank 0's generator state; the other ranks keep their own seed so their
        # augmentations stay different from rank 0's.
        if "rng" in state and "torch" in state["rng"] and self.is_main:
            torch.set_rng_state(state["rng"]["torch"].cpu())
        # Continue exactly where the checkpoint's LR was, also when the user had moved it.
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(max(self.iteration, 1), self.epoch)


class _RunFailed(Exception):
    """Raised inside the thread to end the run as FAILED with a one-line reason."""
