"""The learning-rate schedule: linear warm-up (torch's LinearLR, as torchvision's references
use it), then StepLR by epoch.

A pure function of (iteration, epoch) times a base LR that the user may move at any time
(``set_lr`` / ``scale_lr``): the schedule continues from the user's value instead of
snapping back, which is what a person steering a run expects.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Sequence


def warmup_factor(iteration: int, warmup_iters: int, start_factor: float = 1e-3) -> float:
    """torch's ``LinearLR(start_factor, total_iters=warmup_iters)`` at 1-based ``iteration``.

    As in torchvision's references, the first step uses ``start_factor`` (the scheduler has
    stepped 0 times), and the factor reaches 1 at step ``warmup_iters + 1``.
    """
    steps_done = iteration - 1
    if warmup_iters <= 0 or steps_done >= warmup_iters:
        return 1.0
    return start_factor + (1.0 - start_factor) * max(steps_done, 0) / warmup_iters


def step_factor(epoch: int, step_size: int, gamma: float, milestones: Sequence[int] = ()) -> float:
    """StepLR: multiply by ``gamma`` every ``step_size`` epochs (0-based epoch); with
    ``milestones``, MultiStepLR: by ``gamma`` at each listed epoch instead."""
    if milestones:
        return gamma ** bisect.bisect_right(sorted(milestones), epoch)
    return gamma ** (epoch // step_size)


@dataclass
class LRSchedule:
    """``lr(it, epoch) = base_lr * step_factor(epoch) * warmup_factor(it)``."""

    base_lr: float
    warmup_iters: int
    step_size: int
    gamma: float
    milestones: list[int] = field(default_factory=list)
    """MultiStepLR epochs (set only when continuing a torchvision-references checkpoint)."""

    def factor(self, iteration: int, epoch: int) -> float:
        return step_factor(epoch, self.step_size, self.gamma, self.milestones) * warmup_factor(iteration, self.warmup_iters)

    def lr(self, iteration: int, epoch: int) -> float:
        return self.base_lr * self.factor(iteration, epoch)

    def set_current(self, lr: float, iteration: int, epoch: int) -> None:
        """Move the base so that the LR at (iteration, epoch) becomes ``lr``."""
        self.base_lr = lr / self.factor(iteration, epoch)

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
