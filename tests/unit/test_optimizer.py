"""The run's SGD: torch's fused kernel on the CPU, the same update, and a kernel choice that survives a resume."""

from __future__ import annotations

import math

import pytest
import torch

from cockpit.engine.optimizer import build_optimizer, fused_available, load_optimizer_state, portable_state

CPU = torch.device("cpu")


def two_layers(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def train(model, optimizer, steps=5):
    torch.manual_seed(1)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        model(torch.randn(4, 8)).pow(2).sum().backward()
        optimizer.step()


def test_the_cpu_gets_the_fused_kernel_with_the_configs_hyperparameters(sample_config):
    config = sample_config("optim.lr=0.02", "optim.momentum=0.8", "optim.weight_decay=0.001")
    optimizer = build_optimizer(two_layers().parameters(), config, CPU)
    group = optimizer.param_groups[0]
    assert group["fused"] is True
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.02, 0.8, 0.001)


def test_fused_makes_the_update_torchs_default_sgd_makes(sample_config):
    config = sample_config()
    ours, reference = two_layers(), two_layers()
    train(ours, build_optimizer(ours.parameters(), config, CPU))
    train(reference, torch.optim.SGD(reference.parameters(), lr=config.optim.lr, momentum=config.optim.momentum,
                                     weight_decay=config.optim.weight_decay, foreach=False))
    for mine, theirs in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)
    assert not torch.equal(ours[0].weight, two_layers()[0].weight), "the steps moved the weights"


def test_no_fused_kernel_for_integer_parameters_or_none_at_all():
    assert fused_available(CPU, [torch.zeros(3)])
    assert not fused_available(CPU, [torch.zeros(3, dtype=torch.int64)])
    assert not fused_available(CPU, [])
    assert not fused_available(torch.device("meta"), [torch.zeros(3)])


def test_a_checkpoint_from_an_unfused_run_loads_its_momentum_but_keeps_the_fused_kernel(sample_config):
    config = sample_config()
    old = two_layers()
    old_optimizer = torch.optim.SGD(old.parameters(), lr=0.01, momentum=0.9, foreach=False)
    train(old, old_optimizer, steps=2)
    saved = old_optimizer.state_dict()
    assert saved["param_groups"][0]["fused"] is None

    new = two_layers()
    optimizer = build_optimizer(new.parameters(), config, CPU)
    load_optimizer_state(optimizer, saved)
    assert optimizer.param_groups[0]["fused"] is True
    assert optimizer.param_groups[0]["foreach"] is None
    assert optimizer.param_groups[0]["lr"] == 0.01, "the checkpoint's hyperparameters are loaded"
    buffers = [optimizer.state[p]["momentum_buffer"] for p in new.parameters()]
    expected = [old_optimizer.state[p]["momentum_buffer"] for p in old.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(buffers, expected))


def test_under_amp_the_default_kernel(sample_config):
    assert build_optimizer(two_layers().parameters(), sample_config(), CPU, amp=True).param_groups[0]["fused"] is None


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_under_a_grad_scaler_a_first_step_with_a_non_finite_gradient_leaves_no_momentum_behind(sample_config, bad):
    # torch's fused SGD would make the momentum buffers (uninitialised) and then skip the
    # update; the next step would carry whatever memory they got.
    model = two_layers()
    optimizer = build_optimizer(model.parameters(), sample_config(), CPU, amp=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    before = [p.detach().clone() for p in model.parameters()]
    scaler.scale(model(torch.randn(4, 8)).sum()).backward()
    model[0].weight.grad[0, 0] = bad
    scaler.unscale_(optimizer)  # as engine/step.py does before measuring the grad norm
    scaler.step(optimizer)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert scaler.get_scale() == 2.0, "the scaler saw the non-finite gradient and backed off"
    assert not optimizer.state, "no momentum buffer was made for the skipped step"


def test_a_checkpoint_leaves_the_kernel_to_whoever_loads_it(sample_config):
    model = two_layers()
    optimizer = build_optimizer(model.parameters(), sample_config(), CPU)
    train(model, optimizer, steps=1)
    state = portable_state(optimizer)
    assert (state["param_groups"][0]["fused"], state["param_groups"][0]["foreach"]) == (None, None)
    assert optimizer.param_groups[0]["fused"] is True, "the running optimizer keeps its kernel"
    theirs = torch.optim.SGD(two_layers().parameters(), lr=0.1, momentum=0.9)
    theirs.load_state_dict(state)
    assert theirs.param_groups[0]["fused"] is None and len(theirs.state) == 4
