"""Facts about the machine a run uses, recorded in ``run_started`` and the report."""

from __future__ import annotations

import os
import platform
import socket
import sys

import torch
import torchvision


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"run.device = {name!r} but CUDA is not available on this machine (use 'auto' or 'cpu')")
    return device


def describe(device: torch.device) -> dict[str, object]:
    from cockpit import __version__

    info: dict[str, object] = {
        "cockpit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "gpu_name": None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info["gpu_name"] = torch.cuda.get_device_name(index)
        info["cudnn"] = torch.backends.cudnn.version()
    return info
