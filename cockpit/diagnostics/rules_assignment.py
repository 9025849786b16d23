"""Live rules on label assignment: what the matcher and samplers did (``engine/assignment.py``).

Pure functions from an :class:`AssignmentHistory` (per-iteration telemetry, hand-made in
the tests) to a :class:`Verdict`, in the same form as ``rules.py``:

- ``no_anchor_match``: GT boxes no anchor reaches at the RPN foreground IoU, over a window;
- ``fg_starved``: the box head sees almost no foreground besides the GT boxes themselves;
- ``classifier_background``: the box head calls every RoI background.

The defaults are tuned so that the bundled sample (whose objects are 20-60 px against a
16 px smallest anchor, and where about half of the GT boxes only get a low-quality anchor
match: normal) raises none of them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from cockpit.diagnostics.catalog import RULES_BY_ID
from cockpit.diagnostics.flags import Flag, Verdict
from cockpit.engine.events import Severity

SERIES: tuple[str, ...] = ("gt_no_anchor", "roi_fg", "roi_fg_frac", "cls_accuracy", "fg_cls_accuracy", "gt_size")


@dataclass(frozen=True)
class AssignmentThresholds:
    """Every threshold of these rules (the defaults are the shipped tuning)."""

    anchor_window: int = 20
    """Iterations with GT boxes that ``gt_no_anchor`` is judged over (it does not depend on training)."""
    anchor_share: float = 0.9
    """Median share of GT boxes without a good anchor that flags (the sample sits near 0.6)."""
    starved_window: int = 100
    """Post-warm-up iterations judged by ``fg_starved``."""
    starved_ratio: float = 0.5
    """Median foreground fraction below this share of ``roi_positive_fraction`` ..."""
    starved_extra: float = 1.0
    """... with fewer than this many foreground RoIs per image beyond the GT boxes themselves
    (torchvision adds every GT box to the proposals, so those are foreground whatever the RPN does)."""
    collapse_window: int = 200
    """Post-warm-up iterations judged by ``classifier_background``."""
    collapse_accuracy: float = 0.8
    """Median accuracy on all sampled RoIs at or above this (background is easy) ..."""
    collapse_fg_accuracy: float = 0.05
    """... while the median accuracy on the foreground RoIs stays at or below this."""


DEFAULT = AssignmentThresholds()


@dataclass
class AssignmentHistory:
    """The last iterations' telemetry plus GT boxes per image; bounded, O(1) to record."""

    capacity: int = 400
    iters: deque = field(default_factory=deque)
    gt_per_image: deque = field(default_factory=deque)
    values: dict[str, deque] = field(default_factory=dict)

    def record(self, iteration: int, labels: Mapping[str, float], gt_per_image: float) -> None:
        if not labels:
            return
        self.iters.append(iteration)
        self.gt_per_image.append(gt_per_image)
        for name in SERIES:
            self.values.setdefault(name, deque()).append(float(labels.get(name, math.nan)))
        if len(self.iters) > self.capacity:
            self.iters.popleft()
            self.gt_per_image.popleft()
            for series in self.values.values():
                series.popleft()

    def last(self, name: str, count: int, after: int = 0) -> np.ndarray:
        """The finite values of ``name`` among the last ``count`` iterations later than ``after``."""
        iters = np.asarray(self.iters, dtype=np.int64)[-count:]
        values = np.asarray(self.values.get(name, ()), dtype=np.float64)[-count:]
        values = values[iters > after] if values.size else values
        return values[np.isfinite(values)]


def _title(rule: str) -> str:
    return RULES_BY_ID[rule].title


def _wait(rule: str, evidence: str) -> Verdict:
    return Verdict.not_checked(rule, _title(rule), evidence)


def _ok(rule: str, evidence: str) -> Verdict:
    return Verdict.ok(rule, _title(rule), evidence)


def _flag(rule: str, severity: Severity, evidence: str, cause: str, fix: str, **data) -> Verdict:
    return Verdict.flagged(Flag(rule, _title(rule), severity, evidence, cause, fix, dict(data)))


def no_anchor_match(history: AssignmentHistory, *, smallest_anchor: float | None,
                    t: AssignmentThresholds = DEFAULT) -> Verdict:
    """Most GT boxes have no anchor at IoU >= the RPN foreground threshold, over a window."""
    rule = "no_anchor_match"
    shares = history.last("gt_no_anchor", t.anchor_window)
    if shares.size < t.anchor_window:
        return _wait(rule, f"{shares.size}/{t.anchor_window} iterations with GT boxes seen")
    share = float(np.median(shares))
    sizes = history.last("gt_size", t.anchor_window)
    size = float(np.median(sizes)) if sizes.size else math.nan
    if share < t.anchor_share:
        return _ok(rule, f"{share:.0%} of GT boxes without a good anchor (median of {shares.size} iterations)")
    size_text = f"typical GT box ~{size:.0f} px" if math.isfinite(size) else "GT box size unknown"
    anchor_text = f"smallest anchor {smallest_anchor:.0f} px" if smallest_anchor else "smallest anchor unknown"
    return _flag(
        rule,
        Severity.ERROR,
        f"{share:.0%} of GT boxes have no anchor at the RPN foreground IoU (median of the last "
        f"{shares.size} iterations); {size_text} vs {anchor_text} (model input pixels)",
        "the objects are far smaller (or thinner) than every anchor: an anchor 4x the box's side has "
        "IoU 1/16 with it, so the RPN keeps only one low-quality match per object and learns them badly",
        "upscale the images (model.min_size / max_size), use smaller anchor sizes for the RPN, or tile "
        "large images into crops so objects cover more pixels",
        share=share, gt_size=size, smallest_anchor=smallest_anchor,
    )


def fg_starved(history: AssignmentHistory, *, target_fraction: float, warmup_iters: int = 0,
               t: AssignmentThresholds = DEFAULT) -> Verdict:
    """Foreground fraction far below the sampler's target for long, with GT boxes present."""
    rule = "fg_starved"
    fractions = history.last("roi_fg_frac", t.starved_window, after=warmup_iters)
    if fractions.size < t.starved_window or target_fraction <= 0:
        return _wait(rule, f"{fractions.size}/{t.starved_window} post-warm-up iterations seen")
    iters = np.asarray(history.iters)[-t.starved_window:]
    fg = np.asarray(history.values["roi_fg"], dtype=np.float64)[-t.starved_window:]
    gt = np.asarray(history.gt_per_image, dtype=np.float64)[-t.starved_window:]
    keep = (iters > warmup_iters) & np.isfinite(fg) & (gt > 0)
    if not keep.any():
        return _ok(rule, "no GT boxes in the recent batches")
    fraction = float(np.median(fractions))
    extra = float(np.median(fg[keep] - gt[keep]))
    if fraction >= t.starved_ratio * target_fraction or extra >= t.starved_extra:
        return _ok(rule, f"foreground {fraction:.1%} of sampled RoIs (target {target_fraction:.0%}), "
                         f"{max(extra, 0):.1f} per image beyond the GT boxes")
    return _flag(
        rule,
        Severity.WARNING,
        f"foreground is {fraction:.1%} of the box head's sampled RoIs (target {target_fraction:.0%}) over "
        f"{fractions.size} iterations; only {max(extra, 0):.1f} RoIs per image beyond the GT boxes themselves",
        "the proposals rarely overlap the objects: the RPN has not learned them yet (early training, too "
        "few positive anchors), sampler.roi_fg_iou_thresh is too strict, or the boxes are in a wrong "
        "format (xywh given as xyxy, normalised coordinates) so nothing lines up",
        "check the boxes (`cockpit check`, preview overlay key a), train the RPN longer or raise the LR, "
        "or lower sampler.roi_fg_iou_thresh (e.g. 0.4)",
        fraction=fraction, target=target_fraction,
    )


def classifier_background(history: AssignmentHistory, *, warmup_iters: int = 0,
                          t: AssignmentThresholds = DEFAULT) -> Verdict:
    """High accuracy on all sampled RoIs while the foreground ones are almost never right."""
    rule = "classifier_background"
    accuracy = history.last("cls_accuracy", t.collapse_window, after=warmup_iters)
    fg_accuracy = history.last("fg_cls_accuracy", t.collapse_window, after=warmup_iters)
    if accuracy.size < t.collapse_window or fg_accuracy.size < t.collapse_window // 2:
        return _wait(rule, f"{accuracy.size}/{t.collapse_window} post-warm-up iterations seen")
    overall, foreground = float(np.median(accuracy)), float(np.median(fg_accuracy))
    if overall < t.collapse_accuracy or foreground > t.collapse_fg_accuracy:
        return _ok(rule, f"accuracy {overall:.0%} on sampled RoIs, {foreground:.0%} on the foreground ones")
    return _flag(
        rule,
        Severity.WARNING,
        f"the box head is right on {overall:.0%} of its sampled RoIs but on only {foreground:.0%} of the "
        f"foreground ones (medians over {accuracy.size} iterations): it calls nearly everything background",
        "the foreground/background imbalance: with few foreground RoIs per batch, predicting background "
        "everywhere already minimises most of the classification loss",
        "raise sampler.roi_positive_fraction, try loss.classifier = \"focal\" or loss.hard_negatives = true "
        "(all live from the Config pane), or check that the labels are not all background",
        accuracy=overall, fg_accuracy=foreground,
    )
