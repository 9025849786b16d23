"""MetricHistory ring buffers and the flight recorder."""

from __future__ import annotations

import math

import numpy as np

from cockpit.diagnostics.flight_recorder import FlightRecorder
from cockpit.diagnostics.history import SCORE_BIN_EDGES, EvalFacts, MetricHistory, Ring, score_histogram
from cockpit.engine.hooks import StepOutcome


def test_ring_keeps_last_values_in_order():
    ring = Ring(4)
    assert ring.values().size == 0 and math.isnan(ring.last())
    for v in range(1, 7):
        ring.append(v)
    assert ring.values().tolist() == [3, 4, 5, 6]
    assert ring.values(2).tolist() == [5, 6]
    assert ring.values(10).tolist() == [3, 4, 5, 6]
    assert ring.last() == 6 and len(ring) == 4


def test_history_is_bounded_and_tracks_initial_loss():
    h = MetricHistory(capacity=50)
    for it in range(1, 201):
        h.record_step(it, {"loss_classifier": 1.0 / it}, 10.0 / it)
    assert len(h.total) == 50 and h.steps == 200
    assert h.iters.values()[-1] == 200
    assert h.initial_loss == np.median([10.0 / i for i in range(1, 21)])
    assert h.term("loss_classifier", 3).tolist() == [1 / 198, 1 / 199, 1 / 200]
    assert h.term("missing").size == 0


def test_nonfinite_steps_stay_out_of_the_rings():
    h = MetricHistory()
    assert h.record_step(1, {"a": 1.0}, 1.0)
    assert not h.record_step(2, {"a": math.nan}, math.nan, lr=0.1)
    assert len(h.total) == 1 and h.nonfinite_count == 1
    assert h.last_nonfinite.iter == 2 and "a" in h.last_nonfinite.terms
    # A NaN grad_norm alone means "not measured" unless the trainer said the step was bad.
    assert h.record_step(3, {"a": 1.0}, 1.0, grad_norm=math.nan)
    assert not h.record_step(4, {"a": 1.0}, 1.0, grad_norm=math.nan, finite=False)


def test_score_histogram_and_eval_facts():
    counts = score_histogram([0.0, 0.04, 0.5, 1.0, math.nan])
    assert len(counts) == len(SCORE_BIN_EDGES) - 1 and sum(counts) == 4
    assert counts[0] == 2 and counts[-1] == 1
    facts = EvalFacts.from_scores(10, np.array([0.2, 0.6, 0.7]), num_images=2, score_thresh=0.5)
    assert facts.detections_above == 2 and facts.num_scores == 3 and facts.max_score == 0.7


def outcome(it: int, finite: bool = True, **kw) -> StepOutcome:
    losses = {"loss_classifier": 0.5, "loss_box_reg": math.nan if not finite else 0.2}
    return StepOutcome(
        iter=it, epoch=1, losses=losses, loss=sum(losses.values()), lr=0.01, grad_norm=1.0,
        iter_time=0.1, data_time=0.01, batch_size=2, accumulation=1, finite=finite,
        image_ids=[it * 10, it * 10 + 1], image_paths=[f"/d/img{it}.png", None], boxes_per_image=[3, 0], **kw,
    )


def test_flight_recorder_keeps_last_n_and_names_the_culprit():
    rec = FlightRecorder(size=3)
    assert rec.culprit() is None
    for it in range(1, 6):
        rec.record(outcome(it))
    assert [s["iter"] for s in rec.steps()] == [3, 4, 5]
    rec.record(outcome(6, finite=False, amp_scale=65536.0))
    culprit = rec.culprit()
    assert culprit["iter"] == 6
    assert culprit["nonfinite_terms"] == ["loss_box_reg"]
    assert culprit["losses"]["loss_box_reg"] == "nan"  # JSON-able
    assert culprit["image_ids"] == [60, 61] and culprit["image_paths"][0] == "/d/img6.png"
    assert culprit["boxes_per_image"] == [3, 0] and culprit["amp_scale"] == 65536.0
    assert [p["iter"] for p in culprit["previous"]] == [4, 5]
    # The culprit survives later steps pushing it out of the window.
    for it in range(7, 12):
        rec.record(outcome(it))
    assert rec.culprit()["iter"] == 6
    rec.clear_culprit()
    assert rec.culprit() is None
