"""Adapts the label-assignment rules (``rules_assignment.py``) to the training loop.

Records each step's telemetry (plain numbers already on the CPU), judges the rules every
``run.log_every`` iterations and publishes a ``FlagRaised`` only when a rule's state
changes. Like every diagnostics hook it runs with or without the pre-flight check.
"""

from __future__ import annotations

from typing import Any

from cockpit.diagnostics import rules_assignment as rules
from cockpit.diagnostics.flags import CheckState, Verdict
from cockpit.engine.hooks import Hook, StepOutcome


class AssignmentRulesHook(Hook):
    """Publishes the state changes of the three label-assignment rules."""

    def __init__(self, thresholds: rules.AssignmentThresholds = rules.DEFAULT) -> None:
        self.thresholds = thresholds
        self.history = rules.AssignmentHistory()
        self.states: dict[str, CheckState] = {}

    def after_step(self, trainer: Any, outcome: StepOutcome) -> None:
        if not outcome.finite or not outcome.labels:
            return
        boxes = outcome.boxes_per_image
        self.history.record(outcome.iter, outcome.labels, sum(boxes) / len(boxes) if boxes else 0.0)
        config = trainer.config
        if outcome.iter % max(1, config.run.log_every):
            return
        for verdict in self.verdicts(trainer):
            self._publish_if_changed(trainer, verdict, outcome.iter)

    def verdicts(self, trainer: Any) -> list[Verdict]:
        from cockpit.engine.heads import effective_sampler, smallest_anchor

        config, model = trainer.config, getattr(trainer, "model", None)
        warmup = config.optim.warmup_iters
        sampler = effective_sampler(model, config.sampler) if model is not None else config.sampler.model_dump()
        t = self.thresholds
        return [
            rules.no_anchor_match(self.history, smallest_anchor=smallest_anchor(model), t=t),
            rules.fg_starved(self.history, target_fraction=sampler["roi_positive_fraction"], warmup_iters=warmup, t=t),
            rules.classifier_background(self.history, warmup_iters=warmup, t=t),
        ]

    def _publish_if_changed(self, trainer: Any, verdict: Verdict, iteration: int) -> None:
        if self.states.get(verdict.rule) == verdict.state:
            return
        self.states[verdict.rule] = verdict.state
        trainer.publish(verdict.to_event(iteration))
