"""The flight recorder: the facts of the last N training steps, for the NaN post-mortem.

When a loss goes NaN/Inf the culprit is usually the batch (a broken box) or the LR; the
recorder keeps just enough of each recent step -- which images, how many boxes, the loss
terms, gradient norm, LR and AMP scale -- to show the user the batch that blew up. It
stores the trainer's frozen :class:`StepOutcome` objects by reference in a bounded deque,
so recording costs O(1) and nothing is copied off the GPU.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from cockpit.engine.hooks import StepOutcome


def step_facts(outcome: StepOutcome) -> dict[str, Any]:
    """One step as a JSON-able dict (non-finite floats become strings such as ``"nan"``)."""

    def num(x: float | None) -> float | str | None:
        if x is None:
            return None
        x = float(x)
        return x if math.isfinite(x) else str(x)

    return {
        "iter": outcome.iter,
        "epoch": outcome.epoch,
        "finite": outcome.finite,
        "loss": num(outcome.loss),
        "losses": {k: num(v) for k, v in outcome.losses.items()},
        "nonfinite_terms": sorted(k for k, v in outcome.losses.items() if not math.isfinite(v)),
        "grad_norm": num(outcome.grad_norm),
        "lr": num(outcome.lr),
        "amp_scale": num(outcome.amp_scale),
        "batch_size": outcome.batch_size,
        "image_ids": list(outcome.image_ids),
        "image_paths": list(outcome.image_paths),
        "boxes_per_image": list(outcome.boxes_per_image),
    }


class FlightRecorder:
    """Keeps the last ``size`` steps; :meth:`culprit` returns the latest non-finite one."""

    def __init__(self, size: int = 32) -> None:
        self._steps: deque[StepOutcome] = deque(maxlen=max(1, int(size)))
        self._culprit: StepOutcome | None = None

    def record(self, outcome: StepOutcome) -> None:
        """O(1): keeps a reference to the (frozen) outcome."""
        self._steps.append(outcome)
        if not outcome.finite:
            # Held separately so a long recovery run does not push it out of the window.
            self._culprit = outcome

    def __len__(self) -> int:
        return len(self._steps)

    def steps(self) -> list[dict[str, Any]]:
        """The recorded steps, oldest first, as JSON-able dicts."""
        return [step_facts(o) for o in self._steps]

    def culprit(self) -> dict[str, Any] | None:
        """Facts of the most recent non-finite step (None if there was none), plus the
        finite steps just before it (``previous``) to show how it built up."""
        bad = self._culprit
        if bad is None:
            return None
        facts = step_facts(bad)
        before = [o for o in self._steps if o.iter < bad.iter][-3:]
        facts["previous"] = [
            {"iter": o.iter, "loss": step_facts(o)["loss"], "grad_norm": step_facts(o)["grad_norm"], "lr": o.lr}
            for o in before
        ]
        return facts

    def clear_culprit(self) -> None:
        """Forget the culprit (after the user dealt with it)."""
        self._culprit = None
