"""The run's optimizer: the lesson's SGD, on torch's fused kernel where the device has one.

The update is the one ``torch.optim.SGD`` always makes (weight decay, momentum, step);
only the kernel differs. On a CPU, torch's default is a Python loop over the parameters,
three or four ops each; the fused kernel does all of it in one pass per parameter:
0.39 against 0.99 ms a step for the ``tiny`` model's 35 tensors on this project's 2-core
machine (bench/notes.md). The results agree to float rounding (about 1e-8 after five
steps), not bit for bit. Under AMP the grad scaler hands the fused kernel its
``found_inf`` flag, so a step with an infinite gradient is still skipped.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from cockpit.config import Config


def fused_available(device: torch.device, params: list[torch.Tensor]) -> bool:
    """True where torch has a fused SGD kernel for these parameters (float, on a supported device)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    return bool(params) and all(
        p.device.type == device.type and p.is_floating_point() for p in params
    ) and device.type in _get_fused_kernels_supported_devices()


def build_optimizer(params: Iterable[torch.Tensor], config: Config, device: torch.device) -> torch.optim.SGD:
    """SGD with the config's LR, momentum and weight decay."""
    params = list(params)
    optim = config.optim
    return torch.optim.SGD(
        params,
        lr=optim.lr,
        momentum=optim.momentum,
        weight_decay=optim.weight_decay,
        fused=fused_available(device, params) or None,
    )


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load ``state`` but keep this run's kernel choice.

    A checkpoint's parameter groups carry the ``fused`` / ``foreach`` flags of the run that
    wrote it (a torchvision reference checkpoint, an older cockpit run); loaded as they
    are, they would switch the kernel -- or ask for a fused one this device lacks.
    """
    kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, kernels):
        group.update(kept)
