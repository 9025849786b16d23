"""One optimisation step: forward, backward, (clip), one sync, (optimizer step).

Kept apart from the trainer so the hot path is small enough to read at a glance. The
batch may be split into micro-batches (gradient accumulation) after a CUDA OOM: the
effective batch, and so the LR recipe, stays the same. In a multi-process run the same
step runs on every rank through DistributedDataParallel (see ``engine/distributed.py``).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from cockpit.engine.assignment import COUNTS, summarize

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.distributed import Peers

_get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)


@dataclass
class StepResult:
    losses: dict[str, float]
    loss: float
    grad_norm: float
    finite: bool
    labels: dict[str, float] = field(default_factory=dict)
    """Label-assignment telemetry (``engine/assignment.py``): per-image counts and ratios."""


def split(items: list, parts: int) -> list[list]:
    """Split ``items`` into ``parts`` nearly equal consecutive chunks (no empty chunk)."""
    parts = max(1, min(parts, len(items)))
    size = math.ceil(len(items) / parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def grad_total_norm(parameters: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Total gradient norm; clips to ``max_norm`` when > 0. Stays on the device (no sync)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    first = grads[0]
    if all(g.device == first.device and g.dtype == first.dtype for g in grads):
        # torch's get_total_norm computes the same, but first groups the grads by device and
        # dtype and moves every per-tensor norm to one device: ~40 dispatcher calls a step
        # that one device and one dtype (every grad of a plain run) do not need.
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if _get_total_norm is not None:
        return _get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    images: list[torch.Tensor],
    targets: list[dict],
    *,
    accumulation: int,
    grad_clip: float,
    amp: bool,
    device_type: str,
    poison: bool = False,
    fail: BaseException | None = None,
    peers: "Peers | None" = None,
) -> StepResult:
    """Run one iteration; the optimizer steps only when every loss term (and grad) is finite.

    ``fail`` is raised right after the first forward, where a real OOM would surface
    (fault injection). With ``peers`` (a multi-process run) ``model`` is the
    DistributedDataParallel wrapper, the losses are averaged over ranks, and a CUDA OOM or
    a non-finite value on any rank counts as one on every rank.
    """
    optimizer.zero_grad(set_to_none=True)
    # What the model's own matcher and samplers counted (engine/heads.py installs them).
    telemetry = getattr(getattr(model, "module", model), "cockpit_telemetry", None)
    if telemetry is not None:
        telemetry.clear()
    oom: BaseException | None = None
    names: list[str] = []
    summed = held_back = None
    try:
        names, summed, held_back = _forward(
            model, scaler, images, targets, accumulation=accumulation, amp=amp, device_type=device_type,
            poison=poison, fail=fail,
        )
    except torch.cuda.OutOfMemoryError as error:
        oom = error
    if peers is not None and peers.any(oom is not None) and oom is None:
        oom = torch.cuda.OutOfMemoryError("CUDA out of memory on another rank")
    if oom is not None:
        # Drop the held-back graph before the OOM travels up: the traceback keeps this
        # frame alive through the recovery, and with it every activation of the batch.
        held_back = None
        optimizer.zero_grad(set_to_none=True)
        raise oom
    held_back.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    if amp:
        scaler.unscale_(optimizer)
    grad_norm = grad_total_norm(parameters, grad_clip).detach().float().reshape(1).to(summed.device)
    losses, labels, norm = _to_host(names, summed, grad_norm, telemetry, peers)
    loss = sum(losses.values())
    # Under AMP an infinite gradient is routine (the scaler skips that step and lowers its
    # scale); only the losses decide. Without AMP an infinite gradient is a real fault.
    # Judged on the host, once the numbers are there anyway; with peers they are averaged
    # over ranks, and a NaN or Inf on any rank makes the average NaN or Inf on every rank.
    finite = math.isfinite(loss) and (amp or math.isfinite(norm))
    if finite:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.zero_grad(set_to_none=True)
        if amp:
            scaler.update()
    return StepResult(losses=losses, loss=loss, grad_norm=norm, finite=finite, labels=labels)


def _forward(model, scaler, images, targets, *, accumulation, amp, device_type, poison, fail):
    """Forward (and backward, but for the last micro-batch) over ``accumulation`` micro-batches.

    Returns the loss names, the weighted loss terms summed on the device, and the last
    micro-batch's scaled loss, whose backward the caller runs.
    """
    names: list[str] | None = None
    summed = None
    total_images = len(images)
    chunks = list(zip(split(images, accumulation), split(targets, accumulation)))
    no_sync = getattr(model, "no_sync", None)
    # The last micro-batch's backward is held back: under DDP it is the one that all-reduces
    # the gradients (the others run under no_sync), and once that collective starts a rank
    # can no longer back out, so every rank must first know that no rank ran out of memory
    # (a host-side flag: no device sync). An OOM inside that last backward is past saving.
    held_back = None
    for index, (chunk_images, chunk_targets) in enumerate(chunks):
        last = index == len(chunks) - 1
        with nullcontext() if last or no_sync is None else no_sync():
            with torch.autocast(device_type=device_type, enabled=amp):
                loss_dict = model(chunk_images, chunk_targets)
            if fail is not None:
                # After the forward, not before: DDP's forward may run collectives of
                # its own, which a rank that skipped it would leave unanswered.
                raise fail
            if poison:
                # Fault injection (--inject nan@N): exercise the non-finite path for real.
                loss_dict["loss_classifier"] = loss_dict["loss_classifier"] * float("nan")
            if names is None:
                names = list(loss_dict)
            weight = len(chunk_images) / total_images
            scaled = scaler.scale(sum(loss_dict.values()) * weight)
            if last:
                held_back = scaled
            else:
                scaled.backward()
        terms = torch.stack([loss_dict[name].detach().float() for name in names]) * weight
        summed = terms if summed is None else summed + terms
    return names or [], summed, held_back


def _to_host(names, summed, grad_norm, telemetry, peers):
    """(losses, label-assignment numbers, grad norm) in one transfer."""
    counts, host = telemetry.take(summed.device) if telemetry is not None else (summed.new_zeros(0), {})
    if peers is not None and telemetry is not None:
        # Averaged over ranks below, like the counts, so every ratio is the global one.
        counts = torch.cat([counts, torch.tensor(list(host.values()), device=counts.device)])
    vector = torch.cat([summed, counts, grad_norm])
    if peers is not None:
        vector = peers.mean(vector)
    # The one host-device sync of the iteration: the finiteness check has to happen before
    # optimizer.step() (a NaN step would poison the weights), and the same transfer brings
    # every loss term, the assignment counts and the grad norm to the CPU for the hooks.
    values = vector.tolist()
    n_losses = len(names)
    losses = dict(zip(names, values[:n_losses]))
    labels = {}
    if telemetry is not None:
        if peers is not None:
            host = dict(zip(host, values[n_losses + len(COUNTS) : n_losses + len(COUNTS) + len(host)]))
        labels = summarize(values[n_losses : n_losses + len(COUNTS)], host)
    return losses, labels, values[-1]
