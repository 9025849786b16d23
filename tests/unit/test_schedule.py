"""The LR schedule matches torch's own schedulers, as torchvision's references use them."""

from __future__ import annotations

import pytest
import torch

from cockpit.engine.schedule import LRSchedule, warmup_factor


def torch_warmup_lrs(base: float, warmup_iters: int, steps: int, start_factor: float = 1e-3) -> list[float]:
    """The LR of each of ``steps`` optimizer steps under LinearLR, as train_one_epoch drives it."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_iters)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(("base", "warmup_iters"), [(0.02, 1000), (0.02, 50), (0.005, 7), (0.01, 1)])
def test_warmup_is_torch_linear_lr_step_for_step(base, warmup_iters):
    steps = warmup_iters + 5
    expected = torch_warmup_lrs(base, warmup_iters, steps)
    schedule = LRSchedule(base, warmup_iters, step_size=3, gamma=0.1)
    ours = [schedule.lr(iteration, 0) for iteration in range(1, steps + 1)]
    assert ours == pytest.approx(expected, rel=1e-12, abs=0)


def test_the_first_step_uses_base_times_start_factor():
    # torchvision's recipe: lr 0.02, warm-up factor 1/1000 -> the first step uses 2e-5.
    assert LRSchedule(0.02, 1000, 8, 0.1).lr(1, 0) == pytest.approx(2e-5)
    assert warmup_factor(1, 0) == 1.0  # no warm-up


def test_set_current_makes_the_next_step_use_that_lr_during_warm_up():
    schedule = LRSchedule(0.02, 50, 3, 0.1)
    schedule.set_current(0.001, 11, 0)
    assert schedule.lr(11, 0) == pytest.approx(0.001)
    assert schedule.lr(51, 0) > schedule.lr(11, 0)  # the ramp goes on from the user's value
