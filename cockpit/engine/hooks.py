"""Hooks keep the training step narrow.

Recording, checkpointing, evaluation, memory sampling and the diagnostics hang off the
loop as :class:`Hook` objects (after detectron2's ``HookBase``). The loop calls them in
the engine thread; ``before_step`` runs before every iteration and must cost next to
nothing. ``after_step`` receives a :class:`StepOutcome` whose numbers are already on the
CPU -- the step syncs once per iteration (see ``engine/step.py``) so no hook ever needs
to touch a tensor. The diagnostics are a hook too, attached by whoever assembles the run:
the engine never imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.events import EvalResult
    from cockpit.engine.trainer import Trainer


@dataclass(frozen=True)
class StepOutcome:
    """What one iteration did, in plain Python numbers."""

    iter: int
    """1-based iteration count across the whole run (and across resumes)."""
    epoch: int
    losses: dict[str, float]
    loss: float
    lr: float
    grad_norm: float
    iter_time: float
    data_time: float
    batch_size: int
    accumulation: int
    finite: bool
    """False when a loss term or the gradient norm was NaN/Inf; the optimizer step was skipped."""
    image_ids: list[int] = field(default_factory=list)
    image_paths: list[str | None] = field(default_factory=list)
    boxes_per_image: list[int] = field(default_factory=list)
    amp_scale: float | None = None
    labels: dict[str, float] = field(default_factory=dict)
    """Label-assignment telemetry of this step (``engine/assignment.py`` KEYS; NaN where undefined)."""


class Hook:
    """Base class: every callback the trainer makes, each a no-op; override what you need.

    The trainer calls exactly these (no probing for optional methods), in its thread.
    """

    def before_train(self, trainer: "Trainer") -> None:
        pass

    def before_step(self, trainer: "Trainer") -> None:
        pass

    def after_step(self, trainer: "Trainer", outcome: StepOutcome) -> None:
        pass

    def after_epoch(self, trainer: "Trainer", epoch: int) -> None:
        pass

    def after_eval(self, trainer: "Trainer", result: "EvalResult", extra: dict[str, Any]) -> None:
        """``extra`` holds facts too big for the event (e.g. ``raw_scores``: every detection score)."""

    def after_train(self, trainer: "Trainer") -> None:
        pass

    def on_oom(self, trainer: "Trainer", facts: dict[str, Any]) -> None:
        """CUDA ran out of memory; ``facts``: ``iter``, ``batch_size``, ``micro_batch``,
        ``accumulation``, ``image_size``, ``error`` and the memory sample. The trainer
        retries with a smaller micro-batch (or faults) after the hooks have seen it."""

    def on_probe(self, trainer: "Trainer", facts: dict[str, Any]) -> None:
        """An eval-mode probe on a few val images; ``facts``: ``iter``, ``num_images`` and
        ``scores`` (every raw detection score)."""
