"""The label-assignment rules on hand-made histories."""

from __future__ import annotations

import math

from cockpit.diagnostics.flags import CheckState
from cockpit.diagnostics.rules_assignment import (
    AssignmentHistory,
    AssignmentThresholds,
    classifier_background,
    fg_starved,
    no_anchor_match,
)

T = AssignmentThresholds(anchor_window=10, starved_window=20, collapse_window=20)


def healthy(i: int) -> dict[str, float]:
    """Numbers like the bundled sample's after a few hundred iterations."""
    return {
        "rpn_pos": 4.0, "rpn_neg": 124.0, "gt_no_anchor": 0.6, "roi_fg": 13.0, "roi_bg": 51.0,
        "roi_fg_frac": 13 / 64, "cls_accuracy": 0.88, "fg_cls_accuracy": 0.5, "false_negative": 0.3,
        "gt_size": 40.0,
    }


def history_of(make, iters=range(1, 61), gt=2.5) -> AssignmentHistory:
    history = AssignmentHistory()
    for i in iters:
        history.record(i, make(i), gt)
    return history


def test_healthy_history_raises_none():
    history = history_of(healthy)
    assert no_anchor_match(history, smallest_anchor=16, t=T).state is CheckState.OK
    assert fg_starved(history, target_fraction=0.25, warmup_iters=10, t=T).state is CheckState.OK
    assert classifier_background(history, warmup_iters=10, t=T).state is CheckState.OK


def test_rules_wait_for_enough_iterations():
    history = history_of(healthy, iters=range(1, 6))
    assert no_anchor_match(history, smallest_anchor=16, t=T).state is CheckState.NOT_CHECKED
    assert fg_starved(history, target_fraction=0.25, t=T).state is CheckState.NOT_CHECKED
    assert classifier_background(history, t=T).state is CheckState.NOT_CHECKED


def test_tiny_objects_flag_no_anchor_match_with_sizes():
    history = history_of(lambda i: healthy(i) | {"gt_no_anchor": 1.0, "gt_size": 3.5})
    verdict = no_anchor_match(history, smallest_anchor=16, t=T)
    assert verdict.state is CheckState.FLAGGED
    assert "100%" in verdict.evidence and "~4 px" in verdict.evidence and "16 px" in verdict.evidence
    assert "min_size" in verdict.flag.fix and "anchor" in verdict.flag.fix and "tile" in verdict.flag.fix


def test_no_anchor_match_ignores_iterations_without_gt():
    # NaN = no GT box in that batch: not evidence either way.
    history = history_of(lambda i: healthy(i) | {"gt_no_anchor": 1.0 if i % 2 else math.nan}, iters=range(1, 15))
    assert no_anchor_match(history, smallest_anchor=16, t=T).state is CheckState.NOT_CHECKED


def test_foreground_starved_when_only_gt_boxes_are_foreground():
    starved = lambda i: healthy(i) | {"roi_fg": 2.5, "roi_bg": 61.5, "roi_fg_frac": 2.5 / 64}  # noqa: E731
    verdict = fg_starved(history_of(starved), target_fraction=0.25, warmup_iters=10, t=T)
    assert verdict.state is CheckState.FLAGGED
    assert "target 25%" in verdict.evidence and "roi_fg_iou_thresh" in verdict.flag.fix


def test_low_fraction_with_real_proposal_foreground_is_not_starved():
    # Many GT boxes per image make the fraction small, but proposals do reach them.
    busy = lambda i: healthy(i) | {"roi_fg": 6.0, "roi_bg": 58.0, "roi_fg_frac": 6 / 64}  # noqa: E731
    verdict = fg_starved(history_of(busy, gt=2.0), target_fraction=0.25, warmup_iters=10, t=T)
    assert verdict.state is CheckState.OK


def test_starved_only_judged_after_warmup():
    starved = lambda i: healthy(i) | {"roi_fg": 2.5, "roi_fg_frac": 0.04}  # noqa: E731
    verdict = fg_starved(history_of(starved), target_fraction=0.25, warmup_iters=50, t=T)
    assert verdict.state is CheckState.NOT_CHECKED


def test_classifier_collapsed_to_background():
    collapsed = lambda i: healthy(i) | {"cls_accuracy": 0.93, "fg_cls_accuracy": 0.0, "false_negative": 1.0}  # noqa: E731
    verdict = classifier_background(history_of(collapsed), warmup_iters=10, t=T)
    assert verdict.state is CheckState.FLAGGED
    assert "focal" in verdict.flag.fix and "hard_negatives" in verdict.flag.fix
    assert "93%" in verdict.evidence


def test_classifier_low_overall_accuracy_is_not_collapse():
    learning = lambda i: healthy(i) | {"cls_accuracy": 0.5, "fg_cls_accuracy": 0.0}  # noqa: E731
    assert classifier_background(history_of(learning), warmup_iters=10, t=T).state is CheckState.OK


def test_history_is_bounded():
    history = AssignmentHistory(capacity=5)
    for i in range(1, 20):
        history.record(i, healthy(i), 1.0)
    assert list(history.iters) == [15, 16, 17, 18, 19]
    assert len(history.values["roi_fg"]) == 5
