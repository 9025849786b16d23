"""Checkpoints: torchvision's reference keys, written atomically.

A checkpoint holds ``model``, ``optimizer``, ``lr_scheduler``, ``epoch``, ``args`` (the keys
torchvision's ``references/detection/train.py`` reads) plus ``iteration``, ``epoch_iter``,
``scaler``, ``config`` (TOML text), ``classes``, ``label_to_category`` and RNG state. It is
written to a temporary file and moved into place with ``os.replace``, so a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cockpit.runfiles.jsonl import atomic_writer


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
    with atomic_writer(path) as handle:
        torch.save(state, handle)
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
