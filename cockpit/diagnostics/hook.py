"""The diagnostics hook: adapts the pure live rules to the training loop.

:class:`DiagnosticsHook` feeds a :class:`MetricHistory` and a :class:`FlightRecorder`
from every :class:`StepOutcome` (O(1), plain numbers only), evaluates the rules every
``run.log_every`` iterations (non-finite steps at once) and after each evaluation, and
publishes a :class:`FlagRaised` event only when a rule's state changes, so the event
stream stays small. It judges and reports; the NaN pause / rewind and the OOM recovery
are the engine's actions (engine/recovery.py), which call the hook's ``after_step`` (a
non-finite step is judged at once) and ``on_oom`` like any other hook's.

Whoever assembles a run attaches it (``cockpit.assembly``); the engine never imports it.
The hook only uses ``trainer.publish(event)``, ``trainer.config``, ``trainer.iteration``
and ``trainer.is_headless``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from cockpit.diagnostics import rules
from cockpit.diagnostics.flags import CheckState, Verdict
from cockpit.diagnostics.flight_recorder import FlightRecorder
from cockpit.diagnostics.history import EvalFacts, MetricHistory
from cockpit.engine.hooks import Hook, StepOutcome

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.events import EvalResult

# Rules whose every new FLAGGED occurrence is news (a second NaN after a rewind, a second
# OOM), even when the row is already FLAGGED.
_REPUBLISH = frozenset({"nonfinite_loss", "cuda_oom"})


def _cfg(config: Any, dotted: str, default: Any) -> Any:
    """``config.section.key`` or ``default`` (the hook also runs with partial fake configs)."""
    obj = config
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return default
    return obj


class DiagnosticsHook(Hook):
    """Runs the live rules and publishes their state changes as ``FlagRaised`` events."""

    def __init__(
        self,
        *,
        thresholds: rules.Thresholds = rules.DEFAULT_THRESHOLDS,
        capacity: int = 2000,
        recorder_size: int = 32,
        every: int | None = None,
    ) -> None:
        self.thresholds = thresholds
        self.history = MetricHistory(capacity)
        self.recorder = FlightRecorder(recorder_size)
        self.states: dict[str, Verdict] = {}
        """The last verdict of every rule evaluated so far."""
        self._every_fixed = every
        self._every = every or 10
        self._trainer: Any = None
        self._config: Any = None

    # -- Hook API ----------------------------------------------------------------------
    def before_train(self, trainer: Any) -> None:
        self._trainer = trainer
        self._config = getattr(trainer, "config", None)
        self._refresh_every()

    def after_step(self, trainer: Any, outcome: StepOutcome) -> None:
        self._trainer = trainer
        self.recorder.record(outcome)
        boxes = outcome.boxes_per_image
        recorded = self.history.record_step(
            outcome.iter,
            outcome.losses,
            outcome.loss,
            lr=outcome.lr,
            iter_time=outcome.iter_time,
            data_time=outcome.data_time,
            grad_norm=outcome.grad_norm,
            gt_boxes=float(sum(boxes)) if boxes else math.nan,
            amp=outcome.amp_scale is not None,
            finite=outcome.finite,
        )
        if not recorded:
            # Judged at once (the trainer pauses on it), not at the next log interval.
            self._publish_if_changed(rules.nonfinite_loss(self.history, self.thresholds), outcome.iter)
            return
        if outcome.iter % self._every == 0:
            self.evaluate_step_rules(outcome.iter)

    def after_eval(self, trainer: Any, result: "EvalResult", extra: dict[str, Any]) -> None:
        """``extra``: ``raw_scores`` (every detection score), optionally ``pred_boxes`` /
        ``gt_boxes`` (a sample: list of ``{"boxes": [[x1,y1,x2,y2], ...], "size": [W, H]}``;
        ``width``/``height`` or ``"image_size": (h, w)`` are accepted too) and
        ``probe`` (True when this was an eval-mode probe rather than a full evaluation)."""
        self._trainer = trainer
        extra = extra or {}
        scores = extra.get("raw_scores")
        thresh = float(_cfg(self._config_now(), "eval.score_thresh", 0.5))
        if scores is not None or result.num_images == 0:
            facts = EvalFacts.from_scores(
                result.iter,
                scores or [],
                num_images=result.num_images,
                score_thresh=thresh,
                images_without_detections=result.images_without_detections,
                metrics=result.metrics,
            )
        else:
            # No raw scores handed over: fall back on the event's own counts.
            above = int(round(result.detections_per_image * result.num_images))
            facts = EvalFacts(
                iter=result.iter,
                num_images=result.num_images,
                detections_above=above,
                num_scores=above,
                max_score=math.nan,
                score_thresh=thresh,
                histogram=list(result.score_histogram),
                edges=[i / len(result.score_histogram) for i in range(len(result.score_histogram) + 1)]
                if result.score_histogram else None,
                images_without_detections=result.images_without_detections,
                metrics=dict(result.metrics),
            )
        if extra.get("probe"):
            self.history.record_probe(facts)
            self._publish_if_changed(rules.eval_probe(self.history, self.thresholds), result.iter)
        else:
            self.history.record_eval(facts)
            box_thresh = _cfg(self._config_now(), "model.box_score_thresh", None)
            self._publish_if_changed(
                rules.no_val_detections(self.history, box_score_thresh=box_thresh, t=self.thresholds),
                result.iter,
            )
        for key, source in (("pred_boxes", "predicted"), ("gt_boxes", "ground-truth")):
            sample = extra.get(key)
            if sample:
                boxes, sizes = boxes_and_sizes(sample)
                verdict = rules.boxes_in_corner(boxes, sizes, source=source, t=self.thresholds)
                if verdict.state != CheckState.NOT_CHECKED:
                    self._publish_if_changed(verdict, result.iter)
                    if verdict.state == CheckState.FLAGGED:
                        break

    # -- the trainer's event callbacks -------------------------------------------------
    def on_oom(self, trainer: Any, facts: Mapping[str, Any]) -> Verdict:
        """Judge a CUDA OOM (see :func:`rules.cuda_oom`) and publish the verdict."""
        self._trainer = trainer
        facts = dict(facts)
        if not facts.get("image_size"):
            # model.min_size unset means the architecture's own resize (800 px for ResNet-50).
            from cockpit.diagnostics.preflight import anchor_spec

            config = self._config_now()
            if config is not None and getattr(config, "model", None) is not None:
                facts["image_size"] = anchor_spec(config).min_size
        self.history.record_oom(facts)
        verdict = rules.cuda_oom(facts)
        self._publish_if_changed(verdict, int(facts.get("iter") or self._iteration()))
        return verdict

    def on_probe(self, trainer: Any, facts: Mapping[str, Any]) -> Verdict:
        """Judge an eval-mode probe: ``facts`` has ``iter``, ``num_images`` and ``scores``."""
        self._trainer = trainer
        iteration = int(facts.get("iter") or self._iteration())
        thresh = float(facts.get("score_thresh", _cfg(self._config_now(), "eval.score_thresh", 0.5)))
        self.history.record_probe(
            EvalFacts.from_scores(
                iteration, facts.get("scores") or [], num_images=int(facts.get("num_images") or 0), score_thresh=thresh
            )
        )
        verdict = rules.eval_probe(self.history, self.thresholds)
        self._publish_if_changed(verdict, iteration)
        return verdict

    # -- evaluation --------------------------------------------------------------------
    def evaluate_step_rules(self, iteration: int) -> list[Verdict]:
        """Run every metric-history rule now; publishes changes; returns the verdicts."""
        self._refresh_every()
        config = self._config_now()
        warmup = int(_cfg(config, "optim.warmup_iters", 0) or 0)
        workers = _cfg(config, "data.num_workers", None)
        t = self.thresholds
        verdicts = [
            rules.nonfinite_loss(self.history, t),
            rules.flat_loss(self.history, t),
            rules.rpn_chance(self.history, warmup_iters=warmup, t=t),
            rules.divergence(self.history, warmup_iters=warmup, t=t),
            rules.data_bottleneck(
                self.history,
                num_workers=workers,
                previous=self.states.get("data_bottleneck").state if "data_bottleneck" in self.states else None,
                t=t,
            ),
        ]
        for verdict in verdicts:
            self._publish_if_changed(verdict, iteration)
        return verdicts

    def _publish_if_changed(self, verdict: Verdict, iteration: int) -> bool:
        previous = self.states.get(verdict.rule)
        old_state = previous.state if previous else CheckState.NOT_CHECKED
        changed = verdict.state != old_state
        if not changed and verdict.state == CheckState.FLAGGED and previous is not None:
            # Same state, but a worse or different severity is news; so is a new NaN / OOM.
            old_sev = previous.flag.severity if previous.flag else None
            new_sev = verdict.flag.severity if verdict.flag else None
            changed = old_sev != new_sev or (verdict.rule in _REPUBLISH and verdict.evidence != previous.evidence)
        self.states[verdict.rule] = verdict
        if not changed:
            return False
        trainer = self._trainer
        publish = getattr(trainer, "publish", None)
        if publish is not None:
            publish(verdict.to_event(iteration))
        return True

    def _config_now(self) -> Any:
        # Live patches may replace trainer.config, so read it each time we evaluate.
        trainer = self._trainer
        return getattr(trainer, "config", None) if trainer is not None else self._config

    def _iteration(self) -> int:
        return int(getattr(self._trainer, "iteration", 0) or 0)

    def _refresh_every(self) -> None:
        if self._every_fixed:
            return
        self._every = max(1, int(_cfg(self._config_now(), "run.log_every", 10) or 10))


def boxes_and_sizes(sample: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flatten a per-image box sample into (N, 4) boxes and (N, 2) ``(width, height)``.

    Accepts a list of dicts (``boxes`` plus ``width``/``height``, ``size`` as ``[w, h]``
    (what the evaluation records) or ``image_size`` as torchvision's ``(h, w)``) or a ``(boxes, sizes)`` pair of arrays already flat.
    """
    if isinstance(sample, tuple) and len(sample) == 2:
        return np.asarray(sample[0], dtype=np.float64).reshape(-1, 4), np.asarray(sample[1], dtype=np.float64).reshape(-1, 2)
    all_boxes: list[np.ndarray] = []
    all_sizes: list[np.ndarray] = []
    for item in sample:
        boxes = np.asarray(item.get("boxes", []), dtype=np.float64).reshape(-1, 4)
        if "width" in item and "height" in item:
            w, h = float(item["width"]), float(item["height"])
        elif "size" in item:  # cockpit.engine.evaluation: [width, height]
            w, h = (float(v) for v in item["size"])
        else:
            h, w = (float(v) for v in item["image_size"])
        all_boxes.append(boxes)
        all_sizes.append(np.tile([w, h], (boxes.shape[0], 1)))
    if not all_boxes:
        return np.empty((0, 4)), np.empty((0, 2))
    return np.concatenate(all_boxes), np.concatenate(all_sizes)
