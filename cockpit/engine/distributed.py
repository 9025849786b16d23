"""Multi-process training with torch.distributed (``torchrun`` or ``cockpit run --nproc N``).

``torchrun`` starts one process per device and tells each its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Rank 0 owns everything a person
sees or keeps -- the cockpit or the headless lines, the run directory, checkpoints and
evaluation -- and the other ranks only train. What keeps them in step:

- rank 0 drains its command queue at every iteration boundary and broadcasts what it
  found (with its pause state), so every rank applies the same commands before the same
  iteration;
- a CUDA OOM in any rank's step is agreed on before the gradient all-reduce, and the
  loss vector that already crosses to the CPU once per step is all-reduced with a
  "non-finite on some rank" flag in it, so every rank takes the same recovery path.

Agreements about host-side facts (commands, an OOM flag) travel over a CPU (gloo) group,
so they never add a device synchronisation; the loss vector uses the training group
because it lives on the device anyway.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from cockpit.engine.dist_context import SINGLE, DistContext, detect  # noqa: F401 - re-exported

# A collective waits this long for its slowest peer before the process group gives up. The
# longest legitimate wait is the other ranks idling while rank 0 evaluates or writes a
# checkpoint; a user's pause is covered by heartbeats (see PAUSE_HEARTBEAT_S), not by this.
TIMEOUT = timedelta(hours=2)

PAUSE_HEARTBEAT_S = 30.0
"""While paused, rank 0 broadcasts "still paused" this often so no peer's wait times out."""


def select_device(context: DistContext, device: torch.device) -> torch.device:
    """One GPU per process: a CUDA run uses ``cuda:LOCAL_RANK`` whatever index was asked for."""
    if context.enabled and device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    return device


class Peers:
    """The collectives the trainer needs; one instance per process, made by :func:`connect`."""

    def __init__(self, context: DistContext, device: torch.device):
        self.context = context
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, timeout=TIMEOUT)
        # Host-side agreements ride a CPU group: on NCCL, a broadcast of a Python object or a
        # flag would otherwise copy to the GPU and wait for it -- a sync per iteration for
        # nothing.
        self._control = dist.new_group(backend="gloo", timeout=TIMEOUT) if backend != "gloo" else None

    def broadcast(self, payload: Any) -> Any:
        """Rank 0's ``payload`` on every rank (others pass anything; it is ignored)."""
        box = [payload if self.context.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self._control, device=torch.device("cpu"))
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on at least one."""
        tensor = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self._control)
        return bool(tensor.item() > 0)

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise mean over ranks (a NaN or Inf on any rank stays visible in the result)."""
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor / self.context.world_size

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def connect(context: DistContext, device: torch.device) -> Peers | None:
    """Join the job's process group; None for an ordinary single-process run."""
    return Peers(context, device) if context.enabled else None


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` under DistributedDataParallel; the trainer keeps the bare module for the rest.

    ``find_unused_parameters`` stays off: every trainable parameter of the torchvision Faster
    R-CNNs and of ``tiny`` gets a gradient in a training step (frozen ones have none to
    sync), and the search for unused ones would cost a graph walk per iteration.
    No buffer sync before each forward: BatchNorm running statistics are only read by rank 0's
    evaluation and checkpoints, which use rank 0's own; broadcasting them would add a
    collective to every forward, micro-batches included.
    """
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    options: dict[str, Any] = {"device_ids": [device.index] if device.type == "cuda" else None}
    # Newer torch renamed the switch; both keep the buffers synced once, at wrap time.
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        options["forward_sync_buffers"] = False
    else:
        options["broadcast_buffers"] = False
    return DistributedDataParallel(model, **options)


def launch_command(argv: list[str], nproc: int) -> list[str]:
    """``cockpit ARGV --nproc N`` as the ``torchrun`` command that starts N ranks.

    ``argv`` is the command line after ``cockpit``; ``--nproc`` is taken out so the ranks
    do not launch again. ``--standalone`` lets torchrun pick a free port on this machine.
    """
    rest: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            rest.append(token)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "cockpit", *rest]


def launch(argv: list[str], nproc: int) -> NoReturn:
    """Become ``torchrun`` running ``cockpit ARGV`` as ``nproc`` ranks (does not return).

    The process is replaced rather than made a parent: a signal (SIGTERM from a scheduler,
    SIGHUP from a closed terminal) then reaches torchrun itself, which passes it to every
    rank, and torchrun's exit status is this command's.
    """
    command = launch_command(argv, nproc)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
