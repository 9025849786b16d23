"""Building what a run trains with: device, datasets, loaders, model, optimizer, scaler.

:func:`build_parts` runs in the engine thread (loading data and moving a model to a GPU
take seconds, and a failure there must become an event like any other). It returns one
:class:`RunParts`; the trainer holds it and its collaborators read from it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cockpit.config import Config
from cockpit.engine import distributed
from cockpit.engine.cpu import apply_threads
from cockpit.engine.distributed import DistContext
from cockpit.engine.environment import describe, resolve_device
from cockpit.engine.optimizer import build_optimizer


class SetupRefused(Exception):
    """The run cannot start for a reason the user can fix; ``str()`` is the one-line reason."""


@dataclass
class RunParts:
    """Everything built for a run; ``train_model`` is the DDP wrapper when there are peers."""

    device: torch.device
    peers: Any
    amp: bool
    train_set: Any
    val_set: Any
    train_loader: Any
    sampler: Any
    val_loader: Any
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    train_model: torch.nn.Module
    threads_reason: str = ""
    """Why torch uses the thread count it does (``run.threads``; see engine/cpu.py)."""

    def wrap_for_peers(self) -> None:
        """After a resume has loaded the weights: the step trains through the DDP wrapper.

        Evaluation, previews, snapshots and checkpoints use the bare module, so a
        checkpoint has torchvision's own keys.
        """
        if self.peers is not None:
            self.train_model = distributed.wrap(self.model, self.device)

    def release_wrapper(self) -> None:
        # DDP's reducer keeps the group's last collective work objects (tensors with
        # Python references). Left alive past destroy_process_group, they are freed
        # during interpreter shutdown, where gloo's threads then abort the process.
        self.train_model = self.model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_parts(config: Config, dist: DistContext, preflight: dict | None = None) -> RunParts:
    """Build everything; ``preflight`` names the train images the pre-flight left out."""
    from cockpit.data.loader import build_dataset
    from cockpit.engine.model import build_model

    # Ranks draw different augmentations; the weights still start equal (DDP copies
    # rank 0's when it wraps the model).
    seed_everything(config.run.seed + dist.rank)
    # Before anything runs a parallel region in this (the trainer's) thread.
    threads_reason = apply_threads(config.run.threads)[1]
    device = distributed.select_device(dist, resolve_device(config.run.device))
    peers = distributed.connect(dist, device)
    train_set = build_dataset(config, "train", train=True)
    val_set = build_dataset(config, "val", train=False) if config.data.val else None
    train_loader, sampler = make_train_loader(config, train_set, dist, device, preflight)
    refuse_empty_training_set(config, train_set, sampler)
    val_loader = make_val_loader(config, val_set, device) if val_set is not None else None
    model = build_model(config).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    amp = config.optim.amp and device.type == "cuda"
    optimizer = build_optimizer(params, config, device, amp=amp)
    return RunParts(
        device=device,
        peers=peers,
        amp=amp,
        train_set=train_set,
        val_set=val_set,
        train_loader=train_loader,
        sampler=sampler,
        val_loader=val_loader,
        model=model,
        optimizer=optimizer,
        scaler=torch.amp.GradScaler(device.type, enabled=amp),
        train_model=model,
        threads_reason=threads_reason,
    )


def refuse_empty_training_set(config: Config, train_set: Any, sampler: Any) -> None:
    # Otherwise it "trains" empty epochs, evaluates and checkpoints an untrained model.
    if sampler.size == 0:
        left_out = len(train_set) - sampler.size
        raise SetupRefused(
            f"the training set ({config.data.train}) has no images"
            + (f" that can be read ({left_out} unreadable)" if left_out else "") + "; nothing to train on"
        )


def make_train_loader(config: Config, train_set: Any, dist: DistContext, device: torch.device, preflight: dict | None = None):
    from torch.utils.data import DataLoader

    from cockpit.data.loader import SkippingDataset, collate_skipping, excluded_indices, seed_worker
    from cockpit.engine.sampler import EpochSampler

    # Our own sampler (not shuffle=True) so a resumed run continues mid-epoch exactly.
    sampler = EpochSampler(
        len(train_set), shuffle=True, seed=config.run.seed, rank=dist.rank, world_size=dist.world_size,
        exclude=excluded_indices(preflight, "train"),
    )
    loader = DataLoader(
        SkippingDataset(train_set),
        batch_size=config.data.batch_size,
        sampler=sampler,
        num_workers=config.data.num_workers,
        collate_fn=collate_skipping,
        pin_memory=device.type == "cuda",
        worker_init_fn=seed_worker if config.data.num_workers > 0 else None,
        generator=torch.Generator().manual_seed(config.run.seed),
    )
    return loader, sampler


def make_val_loader(config: Config, val_set: Any, device: torch.device):
    from torch.utils.data import DataLoader

    from cockpit.data.loader import SkippingDataset, collate_skipping

    return DataLoader(
        SkippingDataset(val_set),
        # Not the train batch: a batch is padded to one canvas, so AP would depend on it.
        batch_size=config.eval.batch_size,
        shuffle=False,
        num_workers=min(config.data.num_workers, 2),
        collate_fn=collate_skipping,
        pin_memory=device.type == "cuda",
    )


def describe_run(parts: RunParts, config: Config, dist: DistContext) -> dict[str, Any]:
    """The environment block of ``RunStarted``: device, model, world size, global batch."""
    from cockpit.engine.host_memory import keep_freed_memory
    from cockpit.engine.model import describe_model

    environment = describe(parts.device)
    environment["model"] = describe_model(parts.model)
    environment["world_size"] = dist.world_size
    environment["global_batch"] = config.data.batch_size * dist.world_size
    environment["torch_threads_reason"] = parts.threads_reason
    environment["host_allocator"] = keep_freed_memory()
    environment["optimizer"] = "SGD, fused kernel" if parts.optimizer.param_groups[0].get("fused") else "SGD"
    return environment
