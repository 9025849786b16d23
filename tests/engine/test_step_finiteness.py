"""One training step decides on the host whether it may update the weights."""

from __future__ import annotations

import math

import torch

from cockpit.data.loader import build_dataset
from cockpit.engine.model import build_model
from cockpit.engine.optimizer import build_optimizer
from cockpit.engine.step import train_step


def step(model, optimizer, config, *, amp=False, poison=False):
    dataset = build_dataset(config, "train", train=False)
    images, targets = zip(*[dataset[i] for i in range(2)])
    return train_step(model, optimizer, torch.amp.GradScaler("cpu", enabled=False), list(images), list(targets),
                      accumulation=1, grad_clip=0.0, amp=amp, device_type="cpu", poison=poison)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def changed(before, model):
    after = model.state_dict()
    return [k for k, v in before.items() if not torch.equal(v, after[k])]


def test_a_finite_step_updates_the_weights(sample_config):
    config = sample_config()
    model = build_model(config).train()
    optimizer = build_optimizer(model.parameters(), config, torch.device("cpu"))
    before = weights(model)
    result = step(model, optimizer, config)
    assert result.finite and math.isfinite(result.grad_norm) and result.grad_norm > 0
    assert any(name.endswith("weight") for name in changed(before, model))


def test_an_infinite_gradient_with_finite_losses_skips_the_update_without_amp(sample_config):
    config = sample_config()
    model = build_model(config).train()
    optimizer = build_optimizer(model.parameters(), config, torch.device("cpu"))
    head = model.roi_heads.box_predictor.cls_score.weight
    head.register_hook(lambda grad: grad * math.inf)
    before = weights(model)
    result = step(model, optimizer, config)
    assert all(math.isfinite(v) for v in result.losses.values())
    assert not math.isfinite(result.grad_norm)  # inf, or NaN where a grad was 0
    assert not result.finite
    # Only batch-norm running statistics (updated by the forward itself) may move.
    assert all("running" in name or "num_batches" in name for name in changed(before, model))
    assert all(p.grad is None for p in model.parameters()), "the bad gradients are dropped"


def test_a_nan_loss_term_skips_the_update(sample_config):
    config = sample_config()
    model = build_model(config).train()
    optimizer = build_optimizer(model.parameters(), config, torch.device("cpu"))
    before = weights(model)
    result = step(model, optimizer, config, poison=True)
    assert math.isnan(result.losses["loss_classifier"]) and not result.finite
    assert all("running" in name or "num_batches" in name for name in changed(before, model))
