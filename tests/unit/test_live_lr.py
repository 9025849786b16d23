"""``+`` / ``-`` scale the LR schedule by exactly their factor, warm-up included."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cockpit.config import Config
from cockpit.engine.events import LRChanged, LRSource
from cockpit.engine.live_config import LiveConfig


def _live(warmup_iters: int) -> tuple[LiveConfig, list, SimpleNamespace]:
    config = Config.model_validate(
        {"run": {"name": "lr"}, "data": {"classes": ["background", "shape"]},
         "optim": {"lr": 0.02, "warmup_iters": warmup_iters}}
    )
    events: list = []
    live = LiveConfig(config, events.append, run_dir=None)
    optimizer = SimpleNamespace(param_groups=[{"lr": 0.0}])
    live.attach(optimizer)
    return live, events, optimizer


def _step(live: LiveConfig, iteration: int) -> float:
    """What the trainer does before step ``iteration``: follow the schedule, then use the LR."""
    live.follow_schedule(iteration, 0, announce=False)
    return live.lr


@pytest.mark.parametrize("at", [1, 2, 10, 49])
@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_scaling_during_warm_up_scales_every_later_step_by_the_factor(at, factor):
    unscaled, _, _ = _live(warmup_iters=50)
    scaled, events, _ = _live(warmup_iters=50)
    for iteration in range(1, at + 1):
        _step(unscaled, iteration)
        _step(scaled, iteration)
    scaled.scale_lr(factor, at, 0)  # pressed after step `at`
    for iteration in range(at + 1, 60):
        assert _step(scaled, iteration) == pytest.approx(factor * _step(unscaled, iteration), rel=1e-9)
    assert scaled.config.optim.lr == pytest.approx(factor * 0.02, rel=1e-9)  # the base, as resume reads it
    change, = [e for e in events if isinstance(e, LRChanged)]
    assert change.lr == pytest.approx(factor * unscaled.schedule.lr(at + 1, 0), rel=1e-9)


def test_scaling_after_warm_up_doubles_the_current_lr():
    live, _, optimizer = _live(warmup_iters=0)
    _step(live, 1)
    live.scale_lr(2.0, 1, 0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.04) and _step(live, 2) == pytest.approx(0.04)


def test_scaling_past_the_maximum_caps_the_next_step_and_says_so():
    live, _, optimizer = _live(warmup_iters=0)
    live.set_lr(8.0, LRSource.USER, 1, 0)
    note = live.scale_lr(2.0, 1, 0)
    assert note == "LR capped at the maximum 10" and optimizer.param_groups[0]["lr"] == pytest.approx(10.0)


def _hyperparameters(optimizer) -> tuple[float, float]:
    return optimizer.param_groups[0]["momentum"], optimizer.param_groups[0]["weight_decay"]


def test_an_older_optimizer_state_takes_the_live_momentum_and_weight_decay():
    """A NaN rewind loads a snapshot's param groups; a momentum patched since stays."""
    import torch

    live, _, _ = _live(warmup_iters=0)
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    live.attach(optimizer)
    older = optimizer.state_dict()
    changes = {"optim.momentum": 0.5, "optim.weight_decay": 0.001}
    live.patch(live.config.copy_with(changes), changes, iteration=10, epoch=0)
    assert _hyperparameters(optimizer) == (0.5, 0.001)
    optimizer.load_state_dict(older)
    assert _hyperparameters(optimizer) == (0.9, 5e-4)
    live.restore_groups(0.01)
    assert _hyperparameters(optimizer) == (0.5, 0.001) and live.lr == 0.01


def test_a_resume_trains_with_this_runs_momentum_not_the_checkpoints():
    import torch

    live, _, _ = _live(warmup_iters=0)
    live.config = live.config.copy_with({"optim.momentum": 0.8})  # as `--set optim.momentum=0.8` gives it
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    live.attach(optimizer)
    live.restore(None, None, iteration=5, epoch=0)
    assert _hyperparameters(optimizer) == (0.8, 5e-4)
