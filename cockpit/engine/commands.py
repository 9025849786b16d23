"""Commands the engine obeys: frozen dataclasses sent through a queue.

The trainer drains the queue at every iteration boundary, so a command takes effect
before the next iteration starts. ``Stop`` jumps the queue (priority 0); everything else
is applied in the order it was sent. Each applied command is acknowledged by a
``CommandAck`` event that carries the command's ``name``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


_REGISTRY: dict[str, type["Command"]] = {}


@dataclass(frozen=True)
class Command:
    """Base of every command; ``priority`` 0 jumps ahead of 1."""

    name: ClassVar[str] = "command"
    priority: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Pause(Command):
    """Stop iterating until Resume (the loop blocks on a condition)."""

    name: ClassVar[str] = "pause"
    reason: str = "user"


@dataclass(frozen=True)
class TogglePause(Command):
    """Pause if running, resume if paused -- decided by the engine at the boundary.

    The UI sends this for ``p``/``space`` instead of guessing the state it last saw: two
    quick presses toggle twice against the engine's real state and leave the run running.
    """

    name: ClassVar[str] = "toggle_pause"
    reason: str = "user"


@dataclass(frozen=True)
class Resume(Command):
    """Continue after a pause."""

    name: ClassVar[str] = "resume"


@dataclass(frozen=True)
class Stop(Command):
    """End the run at the next boundary; saves a checkpoint unless ``save`` is False.

    ``failure``: the engine stops itself because of a fault (headless), so the run ends
    FAILED with ``reason`` -- after saving the last good state."""

    name: ClassVar[str] = "stop"
    priority: ClassVar[int] = 0
    save: bool = True
    reason: str = "user"
    failure: bool = False


@dataclass(frozen=True)
class SetLR(Command):
    """Set the learning rate to an exact value (the schedule continues from it)."""

    name: ClassVar[str] = "set_lr"
    lr: float


@dataclass(frozen=True)
class ScaleLR(Command):
    """Multiply the learning rate by ``factor``."""

    name: ClassVar[str] = "scale_lr"
    factor: float


@dataclass(frozen=True)
class SaveCheckpoint(Command):
    """Write a checkpoint now."""

    name: ClassVar[str] = "save"


@dataclass(frozen=True)
class EvaluateNow(Command):
    """Run a COCO evaluation on the val split now."""

    name: ClassVar[str] = "evaluate"


@dataclass(frozen=True)
class ApplyPatch(Command):
    """Change live-safe config fields (``{"optim.lr": 0.01}``); others are refused."""

    name: ClassVar[str] = "patch"
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestPreview(Command):
    """Show val image ``index`` (with predictions when ``predict``) as a ``PreviewReady`` event."""

    name: ClassVar[str] = "preview"
    index: int = 0
    predict: bool = True


@dataclass(frozen=True)
class RewindSkip(Command):
    """After a non-finite loss: restore the last good in-memory state and skip the bad batch."""

    name: ClassVar[str] = "rewind"
    lr_factor: float = 1.0
    grad_clip: float = 0.0


def command_from_dict(data: dict[str, Any]) -> Command:
    """Rebuild a command from ``to_dict()`` output; raises KeyError/TypeError on bad input."""
    data = dict(data)
    cls = _REGISTRY[data.pop("command")]
    return cls(**data)
