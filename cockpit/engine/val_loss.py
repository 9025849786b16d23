"""Validation loss: the four Faster R-CNN loss terms on the val split, comparable across evaluations.

torchvision computes losses only in train mode, so the model runs in train mode under
``no_grad`` with every BatchNorm layer in eval mode (running statistics untouched;
torchvision's pretrained backbones use FrozenBatchNorm anyway). The RPN and box-head
samplers draw at random, so the pass runs on a forked RNG seeded the same every time:
two evaluations see the same sampling, and the training RNG stream is left exactly where
it was. Modes are restored afterwards, whatever happens.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

TOTAL = "loss"


@torch.no_grad()
def validation_loss(model: nn.Module, loader, device: torch.device, seed: int = 0) -> dict[str, float]:
    """Image-weighted means of each loss term over ``loader`` and their sum under ``"loss"``.

    Batches are what the val loader yields (``batch[0]`` images, ``batch[1]`` targets).
    Returns an empty dict when the loader holds no image.
    """
    modes = {module: module.training for module in model.modules()}
    telemetry = getattr(model, "cockpit_telemetry", None)
    devices = [device] if device.type == "cuda" else []
    sums: dict[str, torch.Tensor] = {}
    images_seen = 0
    try:
        model.train()
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        with torch.random.fork_rng(devices=devices), (telemetry.paused() if telemetry is not None else nullcontext()):
            torch.manual_seed(seed)
            for batch in loader:
                images, targets = batch[0], batch[1]
                if not images:
                    continue
                images = [image.to(device, non_blocking=True) for image in images]
                targets = [
                    {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
                    for t in targets
                ]
                losses = model(images, targets)
                for name, value in losses.items():
                    weighted = value.detach().float() * len(images)
                    sums[name] = weighted if name not in sums else sums[name] + weighted
                images_seen += len(images)
    finally:
        for module, training in modes.items():
            module.train(training)
    if not images_seen:
        return {}
    names = list(sums)
    # One transfer for every term (a sync per term would stall a GPU once per term).
    values = (torch.stack([sums[name] for name in names]) / images_seen).tolist()
    result = dict(zip(names, values))
    result[TOTAL] = sum(values)
    return result
