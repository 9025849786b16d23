"""Label-assignment telemetry: what torchvision's own matcher and samplers did this step.

The RPN's and the box head's ``Matcher`` / ``BalancedPositiveNegativeSampler`` are swapped
for subclasses that call torchvision's code unchanged and, on the side, hand what it
computed to an :class:`AssignmentTelemetry` (references to tensors on the model's device --
no host sync, no second forward pass). The step counts them with
:meth:`AssignmentTelemetry.take` into the one device vector it moves to the CPU per
iteration, and :func:`summarize` turns the counts into the per-image numbers that
``metrics.jsonl`` records.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, Matcher

COUNTS: tuple[str, ...] = (
    "rpn_pos",  # anchors sampled positive, summed over images
    "rpn_neg",
    "gt_no_anchor",  # GT boxes whose best anchor IoU is below the RPN foreground threshold
    "roi_fg",  # RoIs sampled foreground, summed over images
    "roi_bg",
    "cls_correct",  # sampled RoIs whose argmax class is their label
    "fg_correct",  # ... among the foreground ones
    "fg_as_bg",  # foreground RoIs predicted as background
    "gt_size",  # sum over GT boxes of sqrt(area), in the model's input pixels
)
"""Device-side counts, summed over the images (and micro-batches) of one step."""
HOST_COUNTS: tuple[str, ...] = ("images", "gt")
"""Counts known on the host without a sync (tensor shapes): images and GT boxes matched."""

KEYS: tuple[str, ...] = (
    "rpn_pos",
    "rpn_neg",
    "gt_no_anchor",
    "roi_fg",
    "roi_bg",
    "roi_fg_frac",
    "cls_accuracy",
    "fg_cls_accuracy",
    "false_negative",
    "gt_size",
)
"""The telemetry keys of every ``"kind": "train"`` record of ``metrics.jsonl`` (``gt_size``, the
mean sqrt(area) of the GT boxes in the model's input pixels, is there for the anchor rule)."""


class AssignmentTelemetry:
    """Collects one step's raw pieces; recording is off outside a training forward.

    The recording pieces only keep references to tensors torchvision computed anyway (the
    sampled masks, the GT boxes, each GT box's best anchor IoU, the sampled RoIs' labels
    and predicted classes), none of which carries a gradient; :meth:`take` counts them
    all at once. Counting per image and per call, as the pieces arrive, took ~150 tiny
    tensor ops a step -- about 1% of a `tiny` iteration on 2 CPU cores (bench/notes.md);
    counting once per step takes ~30.
    """

    def __init__(self) -> None:
        self.enabled = True
        self._sampled: dict[str, list[torch.Tensor]] = {name: [] for name in ("rpn_pos", "rpn_neg", "roi_fg", "roi_bg")}
        self._best_iou: list[tuple[torch.Tensor, float]] = []
        self._gt_boxes: list[torch.Tensor] = []
        self._classified: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._host: dict[str, float] = {name: 0.0 for name in HOST_COUNTS}

    def add_sampled(self, name: str, masks: list[torch.Tensor]) -> None:
        """One sampler call's per-image masks of ``name`` (``rpn_pos``, ``rpn_neg``, ``roi_fg``, ``roi_bg``)."""
        if self.enabled:
            self._sampled[name].extend(masks)

    def add_best_iou(self, best: torch.Tensor, threshold: float) -> None:
        """Each GT box's best anchor IoU in one image, with the RPN's foreground threshold then."""
        if self.enabled:
            self._best_iou.append((best, float(threshold)))

    def add_gt_boxes(self, boxes: torch.Tensor) -> None:
        """One image's GT boxes (xyxy, model input pixels), for their mean size."""
        if self.enabled:
            self._gt_boxes.append(boxes)

    def add_classified(self, predicted: torch.Tensor, labels: torch.Tensor) -> None:
        """The sampled RoIs' predicted classes and their labels (0 = background)."""
        if self.enabled:
            self._classified.append((predicted, labels))

    def add_host(self, name: str, value: float) -> None:
        if self.enabled:
            self._host[name] += value

    def clear(self) -> None:
        for parts in self._sampled.values():
            parts.clear()
        self._best_iou.clear()
        self._gt_boxes.clear()
        self._classified.clear()
        for name in self._host:
            self._host[name] = 0.0

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No recording inside (validation loss, overlays): those forwards are not training."""
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    def take(self, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """(the :data:`COUNTS` as one float vector on ``device``, the host counts); then clears."""
        zero = torch.zeros((), device=device)
        counts = {name: torch.cat(parts).sum() if parts else zero for name, parts in self._sampled.items()}
        counts["gt_no_anchor"] = self._below_threshold() if self._best_iou else zero
        if self._gt_boxes:
            boxes = torch.cat(self._gt_boxes)
            sides = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
            counts["gt_size"] = sides.prod(dim=1).sqrt().sum()
        else:
            counts["gt_size"] = zero
        if self._classified:
            predicted = torch.cat([p for p, _ in self._classified])
            labels = torch.cat([label for _, label in self._classified])
            correct, foreground = predicted == labels, labels > 0
            counts["cls_correct"] = correct.sum()
            counts["fg_correct"] = (correct & foreground).sum()
            counts["fg_as_bg"] = ((predicted == 0) & foreground).sum()
        else:
            counts["cls_correct"] = counts["fg_correct"] = counts["fg_as_bg"] = zero
        # stack promotes the int64 counts to gt_size's float32.
        vector = torch.stack([counts[name] for name in COUNTS]).to(device=device, dtype=torch.float32)
        host = dict(self._host)
        self.clear()
        return vector, host

    def _below_threshold(self) -> torch.Tensor:
        thresholds = {threshold for _, threshold in self._best_iou}
        if len(thresholds) == 1:
            return (torch.cat([best for best, _ in self._best_iou]) < thresholds.pop()).sum()
        # The threshold changed between micro-batches of one step (a live [sampler] patch).
        return torch.stack([(best < threshold).sum() for best, threshold in self._best_iou]).sum()


def summarize(counts: list[float], host: dict[str, float]) -> dict[str, float]:
    """Per-image means and ratios (detectron2's accuracy definitions); NaN where undefined."""
    c = dict(zip(COUNTS, counts))
    images = host.get("images", 0.0)
    gt = host.get("gt", 0.0)
    sampled = c["roi_fg"] + c["roi_bg"]

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    return {
        "rpn_pos": ratio(c["rpn_pos"], images),
        "rpn_neg": ratio(c["rpn_neg"], images),
        "gt_no_anchor": ratio(c["gt_no_anchor"], gt),
        "roi_fg": ratio(c["roi_fg"], images),
        "roi_bg": ratio(c["roi_bg"], images),
        "roi_fg_frac": ratio(c["roi_fg"], sampled),
        "cls_accuracy": ratio(c["cls_correct"], sampled),
        "fg_cls_accuracy": ratio(c["fg_correct"], c["roi_fg"]),
        "false_negative": ratio(c["fg_as_bg"], c["roi_fg"]),
        "gt_size": ratio(c["gt_size"], gt),
    }


class RecordingMatcher(Matcher):
    """torchvision's Matcher; also counts GT boxes no anchor reaches at the high threshold.

    Used for the RPN, where such a box keeps only its "low-quality" best anchor.
    """

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool,
                 telemetry: AssignmentTelemetry) -> None:
        super().__init__(high_threshold, low_threshold, allow_low_quality_matches)
        self.telemetry = telemetry

    def __call__(self, match_quality_matrix: torch.Tensor) -> torch.Tensor:
        matches = super().__call__(match_quality_matrix)
        if self.telemetry.enabled and match_quality_matrix.numel() > 0:
            self.telemetry.add_best_iou(match_quality_matrix.max(dim=1).values, self.high_threshold)
            self.telemetry.add_host("gt", float(match_quality_matrix.shape[0]))
        return matches


class RecordingSimilarity:
    """The RPN's ``box_similarity`` (torchvision's box_iou); also sums the GT boxes' sizes."""

    def __init__(self, similarity, telemetry: AssignmentTelemetry) -> None:
        self.similarity = similarity
        self.telemetry = telemetry

    def __call__(self, gt_boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        if self.telemetry.enabled and gt_boxes.numel() > 0:
            self.telemetry.add_gt_boxes(gt_boxes)
        return self.similarity(gt_boxes, anchors)


class RecordingSampler(BalancedPositiveNegativeSampler):
    """torchvision's balanced sampler; also counts what it sampled (``prefix``: rpn or roi)."""

    def __init__(self, batch_size_per_image: int, positive_fraction: float, telemetry: AssignmentTelemetry,
                 prefix: str) -> None:
        super().__init__(batch_size_per_image, positive_fraction)
        self.telemetry = telemetry
        self.positive_name, self.negative_name = ("rpn_pos", "rpn_neg") if prefix == "rpn" else ("roi_fg", "roi_bg")
        self.prefix = prefix

    def __call__(self, matched_idxs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        positive, negative = super().__call__(matched_idxs)
        if self.telemetry.enabled:
            self.telemetry.add_sampled(self.positive_name, positive)
            self.telemetry.add_sampled(self.negative_name, negative)
            if self.prefix == "rpn":
                self.telemetry.add_host("images", float(len(matched_idxs)))
        return positive, negative


def record_accuracy(telemetry: AssignmentTelemetry, class_logits: torch.Tensor, labels: torch.Tensor) -> None:
    """detectron2's fast_rcnn accuracy counts; background is label 0 here (detectron2: the last)."""
    if not telemetry.enabled or labels.numel() == 0:
        return
    telemetry.add_classified(class_logits.argmax(dim=1), labels)
