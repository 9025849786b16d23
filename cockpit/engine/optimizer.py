"""The run's optimizer: the lesson's SGD, on torch's fused kernel where the device has one.

The update is the one ``torch.optim.SGD`` always makes (weight decay, momentum, step);
only the kernel differs. On a CPU, torch's default is a Python loop over the parameters,
three or four ops each; the fused kernel does all of it in one pass per parameter:
0.38 against 0.96 ms a step for the ``tiny`` model's 35 tensors, 7.6 against 29 ms for
``fasterrcnn_mobilenet_v3_large_320_fpn``, on this project's 2-core machine
(``bench/step_extras.py``). The results agree to float rounding (about 1e-8 after five
steps), not bit for bit.

Not under AMP: there the grad scaler hands a fused optimizer its ``found_inf`` flag and
lets the kernel skip an overflowing step, and on the first step with momentum torch's
``_fused_sgd`` creates the momentum buffers with ``empty_like`` before a kernel that then
returns at once -- the buffers keep whatever memory they got, and every later update
carries it. An overflow on the first fp16 step is routine, so AMP runs keep the default
kernel, which the scaler skips whole.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from cockpit.config import Config

KERNEL_FLAGS = ("fused", "foreach")
"""The parameter-group keys that choose torch's SGD kernel, not the update it makes."""


def fused_available(device: torch.device, params: list[torch.Tensor]) -> bool:
    """True where torch has a fused SGD kernel for these parameters (float, on a supported device)."""
    try:  # torch's own list, private: a torch without it gets the default kernel
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return False
    return bool(params) and all(
        p.device.type == device.type and p.is_floating_point() for p in params
    ) and device.type in _get_fused_kernels_supported_devices()


def build_optimizer(
    params: Iterable[torch.Tensor], config: Config, device: torch.device, *, amp: bool = False
) -> torch.optim.SGD:
    """SGD with the config's LR, momentum and weight decay; fused unless ``amp`` (see above)."""
    params = list(params)
    optim = config.optim
    return torch.optim.SGD(
        params,
        lr=optim.lr,
        momentum=optim.momentum,
        weight_decay=optim.weight_decay,
        fused=(not amp and fused_available(device, params)) or None,
    )


def portable_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` with the kernel flags left to whoever loads it.

    A checkpoint is also read by torchvision's reference scripts (``--resume``), whose
    ``load_state_dict`` would otherwise switch their SGD to this run's kernel.
    """
    state = optimizer.state_dict()
    state["param_groups"] = [{**group, **dict.fromkeys(KERNEL_FLAGS)} for group in state["param_groups"]]
    return state


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load ``state`` but keep this run's kernel choice.

    A checkpoint's parameter groups carry the ``fused`` / ``foreach`` flags of the run that
    wrote it (a torchvision reference checkpoint, an older cockpit run); loaded as they
    are, they would switch the kernel -- or ask for a fused one this device lacks.
    """
    kernels = [{key: group.get(key) for key in KERNEL_FLAGS} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, kernels):
        group.update(kept)
