"""A resumable, seeded shuffling sampler, sharded across ranks in a multi-process run.

The order of epoch ``e`` is a permutation drawn from ``seed + e``, so a run resumed in
the middle of an epoch continues with exactly the samples it had not yet seen. With
``world_size > 1`` every rank draws the same permutation and takes every
``world_size``-th index from ``rank`` on (torch's ``DistributedSampler`` layout): the
epoch is padded by wrapping around so every rank gets the same number of samples, and so
the same number of iterations -- a rank that ran out early would leave the others waiting
in a collective.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """Yields this rank's indices of one epoch, starting ``start`` samples in."""

    def __init__(
        self, size: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1, exclude: frozenset[int] = frozenset()
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        # Indices never drawn (images the pre-flight found unreadable).
        self.kept = [i for i in range(size) if i not in exclude] if exclude else None
        self.size = len(self.kept) if self.kept is not None else size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    @property
    def per_rank(self) -> int:
        """Samples each rank sees in one epoch (``size`` in a single-process run)."""
        return -(-self.size // self.world_size)

    def order(self) -> list[int]:
        if not self.shuffle:
            indices = list(range(self.size))
        else:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.size, generator=generator).tolist()
        if self.kept is not None:
            indices = [self.kept[i] for i in indices]
        if self.world_size == 1 or not indices:
            return indices
        total = self.per_rank * self.world_size
        while len(indices) < total:
            indices += indices[: total - len(indices)]
        return indices[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)
