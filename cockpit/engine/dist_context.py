"""This process's place in a ``torchrun`` job, read from the environment without torch.

Kept apart from :mod:`cockpit.engine.distributed` (which imports torch) so the CLI can
describe a run -- and the cockpit can open -- before torch is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job; ``world_size == 1`` is an ordinary run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def detect(environ: dict[str, str] | None = None) -> DistContext:
    """The context ``torchrun`` describes in the environment; ``SINGLE`` outside torchrun."""
    env = os.environ if environ is None else environ
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return SINGLE
    if world_size <= 1:
        return SINGLE
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)
