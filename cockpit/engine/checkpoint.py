"""Checkpoints: torchvision's reference keys, written atomically.

A checkpoint holds ``model``, ``optimizer``, ``lr_scheduler``, ``epoch``, ``args`` (the keys
torchvision's ``references/detection/train.py`` reads) plus ``iteration``, ``epoch_iter``,
``scaler``, ``config`` (TOML text), ``classes``, ``label_to_category`` and RNG state. It is
written to a temporary file and moved into place with ``os.replace``, so a crash leaves
either the old file or the new one, never half of one.

Checkpoints written by torchvision's references are read too (:func:`from_references`
translates their conventions). The other way round, README says what their ``--resume``
can and cannot take from a cockpit checkpoint.
"""

from __future__ import annotations

import argparse
import collections
import errno
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from cockpit.engine.events import FlagRaised, Severity
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


class DiskFullError(CheckpointError):
    """No room for the checkpoint; the previous file (if any) is untouched."""


MB = 1024 * 1024
SLACK_BYTES = 1 * MB
"""Pickle framing, strings and small state on top of the tensors' bytes."""


def tensor_bytes(state: Any) -> int:
    """Bytes of every tensor in a (nested) state: what ``torch.save`` will write, give or take."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(tensor_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(tensor_bytes(v) for v in state)
    return 0


def free_bytes(folder: Path) -> int:
    """Free bytes for this user on the filesystem holding ``folder``."""
    return shutil.disk_usage(folder).free


def nearly_full_flag(folder: Path, model_bytes: int, iteration: int = 0) -> FlagRaised | None:
    """A checklist row, before the first save, when ``last.pt`` + ``best.pt`` + a temporary
    copy (model and SGD momentum each) will not fit in ``folder``'s free space."""
    needed = 3 * (2 * model_bytes + SLACK_BYTES)
    free = free_bytes(folder)
    if free >= needed:
        return None
    return FlagRaised(
        rule="disk_space", title="Output disk nearly full", status="FLAGGED", severity=Severity.WARNING,
        evidence=f"{free / MB:.0f} MB free under {folder}; checkpoints need ~{needed / MB:.0f} MB",
        likely_cause="the output disk is almost full",
        fix="free space or set run.output_dir to a bigger disk; a save that does not fit pauses the run",
        iter=iteration,
    )


def _disk_full(path: Path, needed: int, free: int) -> DiskFullError:
    name = f"{path.parent.name}/{path.name}"
    return DiskFullError(
        f"no space left on device writing {name} (needs ~{needed / MB:.0f} MB, {free / MB:.0f} MB free); "
        "the previous checkpoint is kept"
    )


def check_room(state: dict[str, Any], path: Path) -> int:
    """The bytes ``state`` needs at ``path`` (creating its folder); raises :class:`DiskFullError`
    when they are not free."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    needed = tensor_bytes(state) + SLACK_BYTES
    free = free_bytes(path.parent)
    if free < needed:
        raise _disk_full(path, needed, free)
    return needed


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` to ``path`` via a temporary file; raises :class:`DiskFullError` (checked
    before writing, and on ENOSPC while writing) or :class:`CheckpointError`, one line each."""
    path = Path(path)
    # Checked first: torch reports a full disk as "[enforce fail at inline_container.cc] unexpected pos".
    needed = check_room(state, path)
    try:
        # The codec's one atomic writer: temp file, fsync, os.replace; the temp goes on error.
        with atomic_writer(path) as handle:
            torch.save(state, handle)
    except (OSError, RuntimeError) as error:
        free = free_bytes(path.parent)
        if getattr(error, "errno", None) == errno.ENOSPC or free < needed:
            raise _disk_full(path, needed, free) from None
        raise CheckpointError(f"cannot write {path}: {_one_line(error)}") from None
    return path


SAFE_GLOBALS = (argparse.Namespace, collections.Counter)
"""Besides tensors and plain containers, what torchvision's references put in a checkpoint:
``args`` (an argparse.Namespace) and MultiStepLR's ``milestones`` (a Counter). Both are
rebuilt from their attributes only, so allowing them runs no code from the file."""


def _one_line(error: BaseException) -> str:
    """torch's multi-line, ANSI-coloured load errors down to the line that says what failed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    unsupported = next((line for line in lines if "Unsupported global" in line), None)
    if unsupported is not None:
        found = re.search(r"GLOBAL ([\w.]+)", unsupported)
        name = found.group(1) if found else "an object"
        return f"it holds {name}, which cockpit does not unpickle (only tensors, plain containers and argparse.Namespace)"
    return lines[0] if lines else type(error).__name__


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # Our checkpoints hold plain containers, numbers and strings besides tensors;
        # weights_only keeps loading an untrusted file from running code.
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds here
        raise CheckpointError(f"cannot read checkpoint {path}: {_one_line(error)}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"cannot read checkpoint {path}: not a training checkpoint (no 'model' state dict)")
    return state


# -- torchvision references/detection checkpoints ------------------------------------------------
def is_references(state: dict[str, Any]) -> bool:
    """A checkpoint written by torchvision's ``references/detection/train.py`` (not by cockpit)."""
    return "iteration" not in state and "config" not in state and "epoch" in state


def from_references(state: dict[str, Any], iters_per_epoch: int, schedule: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A references checkpoint in cockpit's conventions, and one note per thing translated.

    There ``epoch`` N means "epoch N (0-based) finished, the next is N + 1"; cockpit's
    ``epoch`` is the epoch in progress, so the run continues at epoch N + 1, iteration
    (N + 1) x iterations per epoch. Their ``lr_scheduler`` is an epoch-stepped StepLR or
    MultiStepLR state: its base LR, gamma and step size or milestones continue the schedule,
    and warm-up (their LinearLR in epoch 0 only) is not restarted. ``schedule`` is this
    config's LRSchedule state, used for what the checkpoint does not say.
    """
    out = dict(state)
    finished = int(state.get("epoch", -1))
    out["epoch"] = finished + 1
    out["epoch_iter"] = 0
    out["iteration"] = (finished + 1) * max(1, iters_per_epoch)
    notes = [f"torchvision-references checkpoint: epoch {finished} was finished there; continuing at epoch "
             f"{finished + 2} (1-based), iteration {out['iteration']}"]
    sched = state.get("lr_scheduler")
    translated = dict(schedule, warmup_iters=0, milestones=[])
    if isinstance(sched, dict) and sched.get("base_lrs"):
        translated["base_lr"] = float(sched["base_lrs"][0])
        translated["gamma"] = float(sched.get("gamma", translated["gamma"]))
        if sched.get("milestones"):
            translated["milestones"] = sorted(int(m) for m in dict(sched["milestones"]).keys())
            notes.append(f"continuing its MultiStepLR (base LR {translated['base_lr']:g}, milestones "
                         f"{translated['milestones']}, gamma {translated['gamma']:g}); no warm-up")
        elif sched.get("step_size"):
            translated["step_size"] = int(sched["step_size"])
            notes.append(f"continuing its StepLR (base LR {translated['base_lr']:g}, every {translated['step_size']} "
                         f"epochs x{translated['gamma']:g}); no warm-up")
        else:
            notes.append("its lr_scheduler is neither StepLR nor MultiStepLR: continuing this config's StepLR "
                         f"from its base LR {translated['base_lr']:g}; no warm-up")
    else:
        notes.append("it has no lr_scheduler state: continuing this config's schedule without warm-up")
    out["lr_scheduler"] = translated
    return out, notes
