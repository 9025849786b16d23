"""Checkpoints: torchvision's reference keys, written atomically.

A checkpoint holds ``model``, ``optimizer``, ``lr_scheduler``, ``epoch``, ``args`` (the keys
torchvision's ``references/detection/train.py`` reads) plus ``iteration``, ``epoch_iter``,
``scaler``, ``config`` (TOML text), ``classes``, ``label_to_category`` and RNG state. It is
written to a temporary file and moved into place with ``os.replace``, so a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from cockpit.filemode import make_ordinary


class CheckpointError(Exception):
    """A checkpoint cannot be written or read; the message says which and why."""


def all_finite(model: torch.nn.Module) -> bool:
    """True when every parameter and floating buffer is finite (one device sync in all).

    Buffers count too: a forward pass on a poisoned batch updates batch-norm running
    statistics even when the optimizer step is skipped.
    """
    flags = [torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(flags).all().item()) if flags else True


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        make_ordinary(fd)  # the same mode as the rest of the run directory, not mkstemp's 0600
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # Our checkpoints hold plain containers, numbers and strings besides tensors;
        # weights_only keeps loading an untrusted file from running code.
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds here
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
