"""Live rules on hand-made histories: each flags its symptom and stays quiet on a healthy run."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from cockpit.diagnostics import rules
from cockpit.diagnostics.flags import CheckState
from cockpit.diagnostics.history import SCORE_BIN_EDGES, EvalFacts, MetricHistory
from cockpit.engine.events import Severity

TERMS = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")


def healthy_terms(it: int, rng: np.random.Generator, warmup: int = 50) -> dict[str, float]:
    """A plausible healthy Faster R-CNN run: objectness leaves ln 2 quickly, the RoI box
    loss first grows (proposals improve) then falls, everything noisy."""
    decay = math.exp(-it / 300)
    noise = lambda scale: float(rng.normal(0, scale))  # noqa: E731
    warm = min(1.0, it / warmup)
    return {
        "loss_classifier": max(1e-3, 0.2 + 0.8 * decay + noise(0.05)),
        "loss_box_reg": max(1e-3, 0.05 + 0.25 * warm * decay + 0.05 * (1 - decay) + noise(0.03)),
        "loss_objectness": max(1e-3, 0.69 * math.exp(-it / 60) + 0.05 + noise(0.02)),
        "loss_rpn_box_reg": max(1e-4, 0.02 + 0.02 * decay + noise(0.004)),
    }


def feed(history: MetricHistory, its: range, make, **step) -> None:
    for it in its:
        losses = make(it)
        history.record_step(it, losses, sum(losses.values()), **step)


def healthy_history(n: int = 1000, seed: int = 0, warmup: int = 50) -> MetricHistory:
    rng = np.random.default_rng(seed)
    h = MetricHistory(capacity=2000)
    for it in range(1, n + 1):
        losses = healthy_terms(it, rng, warmup)
        h.record_step(
            it, losses, sum(losses.values()), lr=0.02 * min(1.0, it / warmup), iter_time=0.5 + rng.uniform(0, 0.05),
            data_time=0.02 + rng.uniform(0, 0.02), grad_norm=2.0, gt_boxes=8,
        )
    return h


def const_terms(**values: float):
    base = {"loss_classifier": 0.3, "loss_box_reg": 0.2, "loss_objectness": 0.1, "loss_rpn_box_reg": 0.02}
    base.update(values)
    return lambda it: dict(base)


# --------------------------------------------------------------------------------- healthy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_run_raises_nothing_at_any_check_point(seed):
    rng = np.random.default_rng(seed)
    h = MetricHistory()
    warmup = 50
    for it in range(1, 1201):
        losses = healthy_terms(it, rng, warmup)
        h.record_step(it, losses, sum(losses.values()), lr=0.02 * min(1.0, it / warmup),
                      iter_time=0.5, data_time=0.03, grad_norm=2.0, gt_boxes=6)
        if it % 10 == 0:
            verdicts = [
                rules.nonfinite_loss(h),
                rules.flat_loss(h),
                rules.rpn_chance(h, warmup_iters=warmup),
                rules.divergence(h, warmup_iters=warmup),
                rules.data_bottleneck(h, num_workers=2),
            ]
            assert [v for v in verdicts if v.state == CheckState.FLAGGED] == [], it


def test_warmup_rise_is_not_divergence():
    h = MetricHistory()
    # The loss climbs 3x while the LR ramps up over 100 iterations, then settles.
    feed(h, range(1, 101), lambda it: {"loss_classifier": 0.3 + 0.9 * it / 100, "loss_box_reg": 0.1})
    feed(h, range(101, 200), lambda it: {"loss_classifier": 1.2 - 0.002 * (it - 100), "loss_box_reg": 0.1})
    assert rules.divergence(h, warmup_iters=100).state == CheckState.OK


# ---------------------------------------------------------------------------- nonfinite


def test_nonfinite_names_term_and_iteration():
    h = healthy_history(100)
    h.record_step(101, {"loss_classifier": 0.3, "loss_box_reg": math.nan}, math.nan, lr=0.02, grad_norm=1.0)
    v = rules.nonfinite_loss(h)
    assert v.state == CheckState.FLAGGED
    assert v.flag.severity == Severity.ERROR
    assert "loss_box_reg" in v.evidence and "101" in v.evidence
    assert "loss_classifier" not in v.evidence


def test_nonfinite_clears_after_recovery_and_healthy_is_ok():
    h = healthy_history(100)
    assert rules.nonfinite_loss(h).state == CheckState.OK
    h.record_step(101, {"loss_objectness": math.inf}, math.inf)
    feed(h, range(102, 102 + rules.DEFAULT_THRESHOLDS.nonfinite_clear_after), const_terms())
    v = rules.nonfinite_loss(h)
    assert v.state == CheckState.OK and "101" in v.evidence


def test_nonfinite_gradient_only_without_amp_flags():
    h = MetricHistory()
    h.record_step(5, {"loss_classifier": 0.3}, 0.3, grad_norm=math.inf)
    v = rules.nonfinite_loss(h)
    assert v.state == CheckState.FLAGGED and "grad_norm" in v.evidence


def test_amp_overflow_skips_are_normal_until_they_persist():
    h = healthy_history(50)
    h.record_step(51, {"loss_classifier": 0.3}, 0.3, grad_norm=math.inf, amp=True)
    assert rules.nonfinite_loss(h).state == CheckState.OK
    for it in range(52, 52 + rules.DEFAULT_THRESHOLDS.amp_overflow_run):
        h.record_step(it, {"loss_classifier": 0.3}, 0.3, grad_norm=math.inf, amp=True)
    v = rules.nonfinite_loss(h)
    assert v.state == CheckState.FLAGGED and v.flag.severity == Severity.WARNING


def test_nonfinite_from_step():
    v = rules.nonfinite_from_step(7, {"loss_rpn_box_reg": math.nan, "loss_classifier": 0.1}, math.nan, 3.0, 0.01)
    assert v.state == CheckState.FLAGGED and "loss_rpn_box_reg" in v.evidence and "iteration 7" in v.evidence


def test_nonfinite_ok_evidence_reads_as_english_from_the_first_step():
    # Also true of a resumed run, whose history starts again at its first step here.
    h = MetricHistory()
    h.record_step(1, {"loss_classifier": 0.3}, 0.3, grad_norm=1.0)
    assert rules.nonfinite_loss(h).evidence == "every step finite (1 so far)"
    h.record_step(2, {"loss_classifier": 0.3}, 0.3, grad_norm=1.0)
    assert rules.nonfinite_loss(h).evidence == "every step finite (2 so far)"


def test_nonfinite_not_checked_before_any_step():
    assert rules.nonfinite_loss(MetricHistory()).state == CheckState.NOT_CHECKED


# ---------------------------------------------------------------------------- flat_loss


def test_label_zero_run_is_flagged_as_no_foreground_within_50_iterations():
    h = MetricHistory()
    # All labels 0: the RoI head sees only background, loss_box_reg is exactly 0, and the
    # total still falls (the classifier learns "background").
    for it in range(1, 51):
        losses = {"loss_classifier": 0.7 * math.exp(-it / 10), "loss_box_reg": 0.0,
                  "loss_objectness": 0.69 - 0.004 * it, "loss_rpn_box_reg": 0.02}
        h.record_step(it, losses, sum(losses.values()), gt_boxes=5)
    v = rules.flat_loss(h)
    assert v.state == CheckState.FLAGGED
    assert v.flag.severity == Severity.ERROR
    assert "all labels 0 (background)?" in v.flag.likely_cause
    assert "your first class must be 1" in v.flag.fix


def test_flat_loss_ignores_batches_without_boxes():
    h = MetricHistory()
    feed(h, range(1, 60), const_terms(loss_box_reg=0.0), gt_boxes=0)
    assert rules.flat_loss(h).state != CheckState.FLAGGED


def test_flat_loss_healthy_small_box_loss_is_ok():
    h = MetricHistory()
    feed(h, range(1, 60), lambda it: {"loss_box_reg": 0.01 + 0.001 * (it % 3), "loss_classifier": 1.0 - it / 100})
    assert rules.flat_loss(h).state == CheckState.OK


def test_flat_loss_total_never_falls():
    h = MetricHistory()
    rng = np.random.default_rng(0)
    feed(h, range(1, 400), lambda it: {"loss_box_reg": 0.3 + rng.normal(0, 0.01), "loss_classifier": 1.0 + rng.normal(0, 0.02)})
    v = rules.flat_loss(h)
    assert v.state == CheckState.FLAGGED and v.flag.severity == Severity.WARNING


def test_flat_loss_waits_for_enough_steps():
    h = MetricHistory()
    feed(h, range(1, 10), const_terms(loss_box_reg=0.0))
    assert rules.flat_loss(h).state == CheckState.NOT_CHECKED


# --------------------------------------------------------------------------- rpn_chance


def test_rpn_stuck_at_chance_is_flagged():
    h = MetricHistory()
    rng = np.random.default_rng(0)
    feed(h, range(1, 301), lambda it: {"loss_objectness": math.log(2) + rng.normal(0, 0.005), "loss_classifier": 0.5})
    v = rules.rpn_chance(h, warmup_iters=50)
    assert v.state == CheckState.FLAGGED
    assert "0.69" in v.evidence or "0.693" in v.evidence


def test_rpn_chance_during_warmup_is_not_judged():
    h = MetricHistory()
    feed(h, range(1, 201), const_terms(loss_objectness=0.693))
    assert rules.rpn_chance(h, warmup_iters=100).state == CheckState.NOT_CHECKED


def test_rpn_slowly_learning_is_ok():
    h = MetricHistory()
    feed(h, range(1, 301), lambda it: {"loss_objectness": 0.693 - 0.0002 * it})
    assert rules.rpn_chance(h, warmup_iters=0).state == CheckState.OK


def test_rpn_learned_is_ok():
    h = healthy_history(400)
    assert rules.rpn_chance(h, warmup_iters=50).state == CheckState.OK


# --------------------------------------------------------------------------- divergence


def test_divergence_spike():
    h = MetricHistory()
    feed(h, range(1, 101), const_terms())
    feed(h, range(101, 108), const_terms(loss_classifier=20.0))
    v = rules.divergence(h, warmup_iters=0)
    assert v.state == CheckState.FLAGGED and "spiked" in v.evidence
    assert "optim.lr" in v.flag.fix


def test_single_bad_batch_is_not_a_spike():
    h = MetricHistory()
    feed(h, range(1, 101), const_terms())
    feed(h, range(101, 102), const_terms(loss_classifier=20.0))
    feed(h, range(102, 105), const_terms())
    assert rules.divergence(h, warmup_iters=0).state == CheckState.OK


def test_divergence_sustained_rise():
    h = MetricHistory()
    feed(h, range(1, 101), lambda it: {"loss_classifier": 1.0 - 0.005 * it})
    # Then it climbs steadily from 0.5 to 2.5 over 200 iterations.
    feed(h, range(101, 301), lambda it: {"loss_classifier": 0.5 + 0.01 * (it - 100)})
    v = rules.divergence(h, warmup_iters=0)
    assert v.state == CheckState.FLAGGED and "rising" in v.evidence


def test_divergence_waits_after_warmup():
    h = MetricHistory()
    feed(h, range(1, 60), const_terms())
    assert rules.divergence(h, warmup_iters=50).state == CheckState.NOT_CHECKED


# ---------------------------------------------------------------------- boxes_in_corner


def test_predictions_in_corner_flagged():
    boxes = [[0.1, 0.1, 0.6, 0.9]] * 8 + [[0, 0, 1, 1]] * 2
    sizes = [[640, 480]] * 10
    v = rules.boxes_in_corner(boxes, sizes, source="predicted")
    assert v.state == CheckState.FLAGGED
    assert "normalized" in v.flag.likely_cause
    assert "10 of 10 predicted boxes" in v.evidence


def test_boxes_spread_over_image_ok():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, size=(30, 2))
    boxes = np.concatenate([xy, xy + 50], axis=1)
    v = rules.boxes_in_corner(boxes, [[640, 480]] * 30)
    assert v.state == CheckState.OK


def test_boxes_in_corner_needs_enough_boxes():
    assert rules.boxes_in_corner([[0, 0, 1, 1]], [[100, 100]]).state == CheckState.NOT_CHECKED


# -------------------------------------------------------------------- no_val_detections


def trained_history() -> MetricHistory:
    h = MetricHistory()
    feed(h, range(1, 200), lambda it: {"loss_classifier": 2.0 * math.exp(-it / 30) + 0.1})
    return h


def test_no_val_detections_threshold_too_high_shows_histogram():
    h = trained_history()
    scores = [0.1] * 30 + [0.3] * 20 + [0.42] * 5
    h.record_eval(EvalFacts.from_scores(200, scores, num_images=30, score_thresh=0.5))
    v = rules.no_val_detections(h, box_score_thresh=0.05)
    assert v.state == CheckState.FLAGGED
    hist = v.flag.data["score_histogram"]
    assert hist["edges"] == list(SCORE_BIN_EDGES)
    assert sum(hist["counts"]) == 55
    assert v.flag.data["max_score"] == pytest.approx(0.42)
    assert "eval.score_thresh" in v.flag.likely_cause and "model.eval()" in v.flag.likely_cause
    assert "0.40" in v.flag.fix
    assert "0.40-0.45:5" in v.evidence


def test_no_val_detections_no_scores_at_all():
    h = trained_history()
    h.record_eval(EvalFacts.from_scores(200, [], num_images=30, score_thresh=0.5))
    v = rules.no_val_detections(h, box_score_thresh=0.05)
    assert v.state == CheckState.FLAGGED and "no boxes at all" in v.flag.likely_cause


def test_no_val_detections_ok_with_detections():
    h = trained_history()
    h.record_eval(EvalFacts.from_scores(200, [0.9, 0.8, 0.2], num_images=3, score_thresh=0.5))
    assert rules.no_val_detections(h).state == CheckState.OK


def test_no_val_detections_not_flagged_before_training_has_progressed():
    h = MetricHistory()
    feed(h, range(1, 30), const_terms(loss_classifier=1.5))
    h.record_eval(EvalFacts.from_scores(30, [0.1], num_images=3, score_thresh=0.5))
    assert rules.no_val_detections(h).state == CheckState.OK


def test_no_val_detections_trusts_the_raw_score_ap50_over_a_slow_loss():
    # Early in a run the loss may still be above the "trained" ratio while COCO AP, which
    # ranks every raw detection, already shows the boxes are right: the threshold hides them.
    h = MetricHistory()
    feed(h, range(1, 60), const_terms(loss_classifier=1.5))
    low = EvalFacts.from_scores(60, [0.3, 0.2], num_images=2, score_thresh=0.99)
    h.record_eval(replace(low, metrics={"AP50": 0.05}))
    assert rules.no_val_detections(h).state == CheckState.OK
    h.record_eval(replace(low, metrics={"AP50": 0.33}))
    v = rules.no_val_detections(h)
    assert v.state == CheckState.FLAGGED
    assert "AP50 0.330" in v.evidence and "eval.score_thresh = 0.99" in v.flag.likely_cause


# --------------------------------------------------------------------------- eval_probe


def test_eval_probe_flags_consecutive_empty_probes_on_trained_model():
    h = trained_history()
    h.record_probe(EvalFacts.from_scores(100, [0.2], num_images=4, score_thresh=0.5))
    assert rules.eval_probe(h).state == CheckState.OK  # one probe is not enough
    h.record_probe(EvalFacts.from_scores(150, [0.3, 0.1], num_images=4, score_thresh=0.5))
    v = rules.eval_probe(h)
    assert v.state == CheckState.FLAGGED and "score_histogram" in v.flag.data


def test_eval_probe_ok_when_detections_found():
    h = trained_history()
    h.record_probe(EvalFacts.from_scores(100, [0.2], num_images=4, score_thresh=0.5))
    h.record_probe(EvalFacts.from_scores(150, [0.7], num_images=4, score_thresh=0.5))
    assert rules.eval_probe(h).state == CheckState.OK
    assert rules.eval_probe(MetricHistory()).state == CheckState.NOT_CHECKED


# ----------------------------------------------------------------------------- cuda_oom


def test_cuda_oom_names_batch_and_image_size():
    v = rules.cuda_oom({"iter": 12, "batch_size": 4, "image_size": 800, "allocated_mb": 30000.0, "total_mb": 32000.0})
    assert v.state == CheckState.FLAGGED
    assert "batch_size>1 on 800px images" in v.flag.likely_cause
    assert "batch_size 4" in v.evidence and "allocated 30000 MB" in v.evidence
    assert v.flag.severity == Severity.WARNING


def test_cuda_oom_gave_up_is_error_and_small_images_generic_cause():
    v = rules.cuda_oom({"iter": 3, "batch_size": 1, "image_size": [320, 320], "recovered": False})
    assert v.flag.severity == Severity.ERROR
    assert "batch_size>1 on 800px images" in v.flag.likely_cause  # the lesson's cause is always explained


# ---------------------------------------------------------------------- data_bottleneck


def test_data_bottleneck_flagged_with_num_workers_fix():
    h = MetricHistory()
    feed(h, range(1, 100), const_terms(), iter_time=1.0, data_time=0.5)
    v = rules.data_bottleneck(h, num_workers=0)
    assert v.state == CheckState.FLAGGED and "50%" in v.evidence
    assert "data.num_workers" in v.flag.fix


def test_data_bottleneck_ok_and_hysteresis():
    h = MetricHistory()
    feed(h, range(1, 100), const_terms(), iter_time=1.0, data_time=0.25)
    assert rules.data_bottleneck(h, num_workers=2).state == CheckState.OK
    # 25% is below the 30% trigger but above the 20% release: a flagged row stays flagged.
    assert rules.data_bottleneck(h, num_workers=2, previous=CheckState.FLAGGED).state == CheckState.FLAGGED


def test_data_bottleneck_ignores_startup():
    h = MetricHistory()
    feed(h, range(1, 21), const_terms(), iter_time=5.0, data_time=4.9)  # workers spinning up
    feed(h, range(21, 71), const_terms(), iter_time=1.0, data_time=0.05)
    assert rules.data_bottleneck(h).state == CheckState.OK
