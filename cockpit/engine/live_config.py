"""The one home of the live configuration: what the run uses *now*, LR included.

The config a run started with is only where it began. Every change of a live field --
``+``/``-``/``L`` and the socket's ``set_lr`` (:class:`~cockpit.engine.commands.SetLR`,
:class:`~cockpit.engine.commands.ScaleLR`), a Config-pane patch, the NaN recovery's LR cut
-- goes through :class:`LiveConfig`, which keeps

* ``config``: the effective config, whose ``optim.lr`` is the schedule's *base* LR (the
  value that, written in a config file, reproduces the current schedule);
* the schedule and the optimizer's param groups in step with it;
* ``effective.toml`` in the run directory, rewritten atomically at each change, so that
  ``--resume`` continues with the LR the user last set even from an older checkpoint.

Every LR is checked against :func:`cockpit.config.schema.lr_problem` (finite, 0 < lr <= 10)
before it reaches the optimizer; an out-of-bounds request is refused with the reason.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cockpit.config import Config, dump_config
from cockpit.config.schema import MAX_LR, lr_problem
from cockpit.engine import rundir
from cockpit.config.loader import config_to_dict
from cockpit.engine.events import ConfigChanged, Event, LRChanged, LRSource
from cockpit.engine.schedule import LRSchedule
from cockpit.runfiles.jsonl import write_atomic

if TYPE_CHECKING:  # pragma: no cover
    import torch


class LRRefused(ValueError):
    """A requested LR is out of bounds; ``str()`` is the one-line reason."""


def recorded_lr(run_dir: Path | None) -> float | None:
    """The base LR a run last used, from its ``effective.toml``; None when absent or unreadable."""
    if run_dir is None or not (run_dir / rundir.EFFECTIVE).is_file():
        return None
    try:
        lr = tomllib.loads((run_dir / rundir.EFFECTIVE).read_text(encoding="utf-8"))["optim"]["lr"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return None  # a damaged record falls back on the checkpoint's LR
    return float(lr) if isinstance(lr, (int, float)) and lr_problem(lr) is None else None


class LiveConfig:
    """The effective config, the LR schedule and the optimizer's LR, kept as one."""

    def __init__(self, config: Config, publish: Callable[[Event], None], run_dir: Path | None):
        self.config = config
        """The effective config: the start config plus every live change since."""
        self.schedule = LRSchedule(config.optim.lr, config.optim.warmup_iters, config.optim.step_size, config.optim.gamma)
        self._publish = publish
        self._run_dir = run_dir
        self._optimizer: "torch.optim.Optimizer | None" = None

    def attach(self, optimizer: "torch.optim.Optimizer") -> None:
        """The optimizer whose param groups follow the schedule (built in the engine thread)."""
        self._optimizer = optimizer

    @property
    def lr(self) -> float:
        """The LR the optimizer uses now (warm-up and StepLR included)."""
        if self._optimizer is None:
            return self.schedule.lr(1, 0)
        return float(self._optimizer.param_groups[0]["lr"])

    # -- changes ---------------------------------------------------------------------------
    def set_lr(self, lr: float, source: LRSource, iteration: int, epoch: int) -> None:
        """Make ``lr`` the current LR; the schedule continues from it. Raises :class:`LRRefused`."""
        problem = lr_problem(lr)
        if problem is not None:
            raise LRRefused(problem)
        previous, before = self.lr, self.config
        # Anchored on the next step, so that step uses exactly ``lr`` (also during warm-up).
        self.schedule.set_current(lr, iteration + 1, epoch)
        self._write_groups(lr)
        self._publish(LRChanged(iter=iteration, lr=lr, previous=previous, source=source))
        self._record(iteration, before)

    def scale_lr(self, factor: float, iteration: int, epoch: int) -> str | None:
        """Multiply the schedule by ``factor`` from the next step on, capped at MAX_LR;
        returns a note when capped.

        The next step's LR is what the schedule gives it, times ``factor``: during warm-up
        that is higher than the current LR times ``factor`` (the ramp rises every step), and
        scaling the current LR instead would move the base by less than ``factor``.
        """
        if not factor > 0 or factor != factor or factor == float("inf"):
            raise LRRefused(f"factor must be finite and > 0 (got {factor})")
        upcoming = self.schedule.lr(iteration + 1, epoch)
        wanted = upcoming * factor
        if wanted > MAX_LR and upcoming >= MAX_LR:
            raise LRRefused(f"LR is already at the maximum {MAX_LR:g}")
        lr = min(wanted, MAX_LR)
        self.set_lr(lr, LRSource.USER, iteration, epoch)
        return f"LR capped at the maximum {MAX_LR:g}" if lr < wanted else None

    def patch(self, new_config: Config, changes: dict[str, Any], iteration: int, epoch: int) -> None:
        """Adopt a validated copy with live changes; ``optim.lr`` there is the base LR."""
        before = self.config
        if "optim.lr" in changes:
            previous = self.lr
            self.schedule.base_lr = new_config.optim.lr
            lr = self.schedule.lr(iteration + 1, epoch)
            self._write_groups(lr)
            self._publish(LRChanged(iter=iteration, lr=lr, previous=previous, source=LRSource.USER))
        self.config = new_config
        self._write_hyperparameters()
        self._record(iteration, before)

    def follow_schedule(self, iteration: int, epoch: int, announce: bool) -> None:
        """Set the LR the schedule gives for (iteration, epoch); announce the epoch steps."""
        lr = self.schedule.lr(max(iteration, 1), epoch)
        previous = self.lr
        if lr == previous:
            return
        self._write_groups(lr)
        # Warm-up moves the LR every iteration; announce only the epoch steps.
        if announce and iteration > 0 and abs(lr - previous) > 1e-12 * max(lr, previous):
            self.publish_schedule_change(iteration, lr, previous)

    def publish_schedule_change(self, iteration: int, lr: float, previous: float) -> None:
        self._publish(LRChanged(iter=iteration, lr=lr, previous=previous, source=LRSource.SCHEDULE))

    def restore(self, schedule_state: dict | None, recorded_base: float | None, iteration: int, epoch: int) -> None:
        """On resume: the checkpoint's schedule, then the run's last recorded LR over it."""
        if schedule_state is not None:
            self.schedule.load_state_dict(schedule_state)
        if recorded_base is not None:
            self.schedule.base_lr = recorded_base
        if lr_problem(self.schedule.base_lr) is not None:
            # A checkpoint from before the bounds (e.g. base_lr inf): back to the config's.
            self.schedule.base_lr = self.config.optim.lr
        self.config = self.config.copy_with({"optim.lr": self.schedule.base_lr})
        # Continue exactly where the run's LR was, also when the user had moved it.
        self._write_groups(self.schedule.lr(max(iteration, 1), epoch))
        # The checkpoint's groups carry the momentum and weight decay of their run; this
        # run's config (its --set included) is what effective.toml says it trains with.
        self._write_hyperparameters()

    def restore_groups(self, lr: float) -> None:
        """After loading an older optimizer state (a NaN rewind): the param groups back on
        ``lr`` and on the live config's momentum and weight decay, which may have changed
        since that state was taken."""
        self._write_groups(lr)
        self._write_hyperparameters()

    def set_grad_clip(self, grad_clip: float, iteration: int) -> None:
        before = self.config
        self.config = self.config.copy_with({"optim.grad_clip": grad_clip})
        self._record(iteration, before)

    # -- internals -------------------------------------------------------------------------
    def _write_hyperparameters(self) -> None:
        if self._optimizer is not None:
            for group in self._optimizer.param_groups:
                group["momentum"] = self.config.optim.momentum
                group["weight_decay"] = self.config.optim.weight_decay

    def _write_groups(self, lr: float) -> None:
        if self._optimizer is not None:
            for group in self._optimizer.param_groups:
                group["lr"] = lr

    def _record(self, iteration: int, previous: Config) -> None:
        """The effective config, base LR included: an event, and ``effective.toml`` (rank 0 only)."""
        if self.schedule.base_lr != self.config.optim.lr and lr_problem(self.schedule.base_lr) is None:
            self.config = self.config.copy_with({"optim.lr": self.schedule.base_lr})
        before, after = config_to_dict(previous), config_to_dict(self.config)
        changed = sorted(
            f"{section}.{key}"
            for section, values in after.items()
            if isinstance(values, dict)
            for key, value in values.items()
            if before.get(section, {}).get(key) != value
        )
        if not changed:
            return
        if self._run_dir is not None:
            write_atomic(self._run_dir / rundir.EFFECTIVE, dump_config(self.config))
        self._publish(ConfigChanged(iter=iteration, config=after, changed=changed))
