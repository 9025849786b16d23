"""Assembling a run: the engine plus the diagnostics that watch it and the optional listeners.

Dependencies point one way (engine <- diagnostics <- ui/report/remote): the engine never
imports the diagnostics, so the code that builds a trainer for the CLI, the detached
daemon and the cockpit's restart action attaches the :class:`DiagnosticsHook` here.
"""

from __future__ import annotations

from typing import Callable

from cockpit.config import Config
from cockpit.diagnostics.assignment_hook import AssignmentRulesHook
from cockpit.diagnostics.hook import DiagnosticsHook
from cockpit.engine.hooks import Hook
from cockpit.engine.session import RunRequest
from cockpit.engine.trainer import Trainer


def watched_hooks(request: RunRequest) -> list[Hook]:
    """The hooks every assembled run gets: the diagnostics (the label-assignment rules
    included), on rank 0 (it alone publishes)."""
    return [DiagnosticsHook(), AssignmentRulesHook()] if request.dist.is_main else []


def make_trainer(request: RunRequest, *, headless: bool) -> Trainer:
    """The trainer for ``request``, with the diagnostics and the optional listeners its config asks for.

    Raises ``TensorBoardMissing`` (before any run folder is made) when ``run.tensorboard``
    is on without the tensorboard package.
    """
    _check_listeners(request.config)
    trainer = Trainer(
        request.config,
        resume=request.resume,
        headless=headless,
        injections=request.injections,
        hooks=watched_hooks(request),
        preflight=request.preflight,
        dist=request.dist,
    )
    return attach_listeners(trainer)


def _check_listeners(config: Config) -> None:
    if config.run.tensorboard:
        from cockpit.export.tensorboard import require_tensorboard

        require_tensorboard("run.tensorboard = true")


def attach_listeners(trainer: Trainer) -> Trainer:
    """Subscribe the config's optional listeners (TensorBoard) to ``trainer``'s events."""
    if trainer.config.run.tensorboard and trainer.run_dir is not None:
        from cockpit.export.tb_listener import TensorBoardListener

        trainer.subscribe(TensorBoardListener(trainer.run_dir))
    return trainer


def engine_factory(request: RunRequest) -> Callable[[Config, str | None], Trainer] | None:
    """For the cockpit's restart action: a new run from a checkpoint with an edited config.

    None in a multi-process run: a restart would need every rank to restart with it.
    """
    if request.dist.enabled:
        return None

    def build(config: Config, resume_from: str | None) -> Trainer:
        _check_listeners(config)
        trainer = Trainer(config, resume=resume_from, headless=False, hooks=[DiagnosticsHook(), AssignmentRulesHook()],
                          preflight=request.preflight)
        return attach_listeners(trainer)

    return build
