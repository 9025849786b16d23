"""What the user asked: the command queue, applying commands, and the multi-GPU exchange.

Commands go into a priority queue (``Stop`` first) that the loop drains at every
iteration boundary (:meth:`Control.at_boundary`), so a command takes effect before the
next iteration starts. Pause blocks on a condition variable until the next command
arrives -- no polling. In a multi-process run only rank 0's queue is read; what it drains
is broadcast so every rank applies the same commands at the same boundary.
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import TYPE_CHECKING, Any

from cockpit.config import LIVE_FIELDS
from cockpit.engine.commands import (
    ApplyPatch,
    Command,
    EvaluateNow,
    Pause,
    RequestPreview,
    Resume,
    RewindSkip,
    SaveCheckpoint,
    ScaleLR,
    SetLR,
    Stop,
    TogglePause,
    command_from_dict,
)
from cockpit.engine.distributed import PAUSE_HEARTBEAT_S
from cockpit.engine.events import CommandAck, LRSource, RunState, WarningCategory
from cockpit.engine.live_config import LRRefused

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.trainer import Trainer


class Control:
    """The trainer's command queue and how each command is applied."""

    def __init__(self, trainer: "Trainer"):
        self._trainer = trainer
        self._commands: queue.PriorityQueue = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self.stop: Stop | None = None
        """The Stop being obeyed, once one was drained."""
        self.pause_heartbeat = PAUSE_HEARTBEAT_S
        self.exchanges = 0
        """Command exchanges with the other ranks so far (heartbeats during a pause included)."""
        self._woken = False

    def send(self, command: Command) -> None:
        with self._cond:
            self._commands.put((command.priority, next(self._sequence), command))
            self._cond.notify_all()

    def wake(self) -> None:
        """Let a paused boundary look round without a command (a background checkpoint ended)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    # -- the boundary ------------------------------------------------------------------------
    def at_boundary(self) -> bool:
        """Apply queued commands; block while paused. True when the run must stop.

        An end-of-epoch checkpoint written in the background that has ended is reported
        here first, and again while paused (a failed write pauses or stops the run).
        """
        t = self._trainer
        t.checkpoints.poll()
        self._drain()
        while t.state is RunState.PAUSED and self.stop is None:
            if t.is_main:
                with self._cond:
                    if t.parts.peers is None:
                        while self._commands.empty() and not self._woken:
                            self._cond.wait()
                    elif self._commands.empty() and not self._woken:
                        # The other ranks wait for this rank in the broadcast of _drain; a
                        # "still paused" round now and then keeps their wait from timing out.
                        self._cond.wait(self.pause_heartbeat)
                    self._woken = False
                # A write that ended during the pause is told now, not at resume.
                t.checkpoints.poll()
            self._drain()
        return self.stop is not None

    def _drain(self) -> None:
        """Apply what is queued, round after round, until a round brings nothing.

        Applying a command may queue another (a failing evaluation asks to stop); the next
        round takes it before the iteration starts. With peers, each round is one
        broadcast of rank 0's commands and pause state, so every rank runs the same rounds.
        """
        t = self._trainer
        while True:
            commands = self._take_pending() if t.is_main else []
            if t.parts.peers is not None:
                commands = self._exchange(commands)
            if not commands:
                return
            self._apply_all(commands)
            if self.stop is not None:
                return

    def _take_pending(self) -> list[Command]:
        """Everything queued, in priority order (a Stop first)."""
        taken = []
        while True:
            try:
                _, _, command = self._commands.get_nowait()
            except queue.Empty:
                return taken
            taken.append(command)

    def _exchange(self, commands: list[Command]) -> list[Command]:
        """Rank 0's commands on every rank; the other ranks also take on its pause state."""
        t = self._trainer
        paused, sent = t.parts.peers.broadcast((t.state is RunState.PAUSED, [c.to_dict() for c in commands]))
        self.exchanges += 1
        if t.is_main:
            return commands
        # Rank 0 may have paused on its own (a fault in one of its hooks): follow it, so no
        # rank steps into a collective that rank 0 will not join.
        if paused and t.state is RunState.RUNNING:
            t.set_state(RunState.PAUSED, "paused on rank 0")
        elif not paused and t.state is RunState.PAUSED:
            t.set_state(RunState.RUNNING, "running on rank 0")
        return [command_from_dict(data) for data in sent]

    def _apply_all(self, commands: list[Command]) -> None:
        t = self._trainer
        for position, command in enumerate(commands):
            if isinstance(command, Stop):
                # Stop jumps the queue: what was sent before it is refused, not applied.
                self.stop = self.stop or command
                for refused in commands[position + 1 :]:
                    if not isinstance(refused, Stop):
                        t.publish(CommandAck(command=refused.name, iter=t.iteration, ok=False, message="the run is stopping"))
                return
            try:
                message = self._apply(command)
                t.publish(CommandAck(command=command.name, iter=t.iteration, ok=not message, message=message or ""))
            except LRRefused as refusal:
                t.publish(CommandAck(command=command.name, iter=t.iteration, ok=False, message=str(refusal)))
            except Exception as error:  # noqa: BLE001 - a bad command is refused, not fatal
                t.publish(CommandAck(command=command.name, iter=t.iteration, ok=False, message=f"{type(error).__name__}: {error}"))

    # -- one command ---------------------------------------------------------------------------
    def _apply(self, command: Command) -> str | None:
        """Apply one command; returns a refusal message, or None when applied."""
        t = self._trainer
        if isinstance(command, TogglePause):
            command = Pause(reason=command.reason) if t.state is RunState.RUNNING else Resume()
        if isinstance(command, Pause):
            if t.state is RunState.RUNNING:
                t.set_state(RunState.PAUSED, f"paused by {command.reason}")
            return None
        if isinstance(command, Resume):
            if t.recovery.pending_rewind:
                t.recovery.rewind(lr_factor=1.0, grad_clip=0.0, who="resumed by the user")
            if t.state is RunState.PAUSED:
                t.set_state(RunState.RUNNING, "resumed")
            return None
        if isinstance(command, SetLR):
            t.live.set_lr(command.lr, LRSource.USER, t.iteration, t.epoch)
            return None
        if isinstance(command, ScaleLR):
            note = t.live.scale_lr(command.factor, t.iteration, t.epoch)
            if note:
                t.warn(note, category=WarningCategory.LR_CAPPED)
            return None
        if isinstance(command, SaveCheckpoint):
            if t.checkpoints.save("user"):
                return None
            return t.checkpoints.error or "weights are not finite; checkpoint not written"
        if isinstance(command, EvaluateNow):
            if t.val_set is None:
                return "no val split configured (data.val)"
            t.side_jobs.evaluate()
            return None
        if isinstance(command, RequestPreview):
            if t.val_set is None or len(t.val_set) == 0:
                return "no val split configured (data.val)"
            t.side_jobs.publish_preview(command.index % len(t.val_set), predict=command.predict)
            return None
        if isinstance(command, ApplyPatch):
            return self._apply_patch(command.changes)
        if isinstance(command, RewindSkip):
            t.recovery.rewind(command.lr_factor, command.grad_clip, who="user")
            if t.state is RunState.PAUSED:
                t.set_state(RunState.RUNNING, "resumed after rewind")
            return None
        return f"unknown command {command.name!r}"

    def _apply_patch(self, changes: dict[str, Any]) -> str | None:
        t = self._trainer
        refused = sorted(set(changes) - LIVE_FIELDS)
        if refused:
            return f"cannot change while running (needs a restart): {', '.join(refused)}"
        try:
            new_config = t.config.copy_with(changes)
        except Exception as error:  # noqa: BLE001 - pydantic's ValidationError
            return f"invalid value: {_first_problem(error)}"
        t.live.patch(new_config, changes, t.iteration, t.epoch)
        if any(key.startswith(("loss.", "sampler.")) for key in changes):
            from cockpit.engine.heads import apply_settings

            apply_settings(t.model, new_config)  # read at the next forward: the next iteration
        if "augment.hflip" in changes or "augment.photometric" in changes:
            from cockpit.data.transforms import set_augment_probabilities

            set_augment_probabilities(
                t.train_set.transform, hflip=new_config.augment.hflip, photometric=new_config.augment.photometric
            )
        return None


def _first_problem(error: Exception) -> str:
    """``optim.lr: Input should be a finite number`` from a pydantic ValidationError."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg', '')}"
    return str(error).splitlines()[0]
