"""The preview pane's assignment overlay: which anchors and proposals one image's GT boxes got.

Computed on the trainer's thread, from the model as it is now, with its own matcher
thresholds and box-head sampler (on a forked, fixed-seed RNG, so training's random
stream is untouched), and sent as an :class:`AssignmentOverlay` of plain lists: the UI
only draws rectangles.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou

from cockpit.engine.events import AssignmentOverlay

MAX_BOXES = 40
"""At most this many boxes of each kind: more would only cover the image in a terminal."""


def _spread(boxes: torch.Tensor, limit: int) -> torch.Tensor:
    """At most ``limit`` rows, evenly spaced (not just the first ones)."""
    if boxes.shape[0] <= limit:
        return boxes
    keep = torch.linspace(0, boxes.shape[0] - 1, limit).round().long()
    return boxes[keep]


def _rounded(boxes: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 1) for v in box] for box in boxes.cpu().tolist()]


def positive_anchors(iou: torch.Tensor, fg_thresh: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices of anchors the RPN labels positive, indices of GT boxes under ``fg_thresh``).

    As torchvision's Matcher with ``allow_low_quality_matches``: an anchor is positive at
    IoU >= ``fg_thresh`` with some GT box, or when it is a GT box's best anchor.
    """
    best_per_gt = iou.max(dim=1).values
    positive = iou.max(dim=0).values >= fg_thresh
    low_quality = (iou == best_per_gt[:, None]) & (best_per_gt[:, None] > 0)
    positive |= low_quality.any(dim=0)
    order = torch.argsort(iou.max(dim=0).values[positive], descending=True)
    return torch.where(positive)[0][order], torch.where(best_per_gt < fg_thresh)[0]


@torch.no_grad()
def make_overlay(model, dataset, index: int, *, device: torch.device, iteration: int, split: str = "val",
                 seed: int = 0) -> AssignmentOverlay:
    """The overlay of ``dataset[index]`` under ``model``'s current weights and settings."""
    image, target = dataset[index]
    original = (int(image.shape[-2]), int(image.shape[-1]))
    modes = {module: module.training for module in model.modules()}
    telemetry = getattr(model, "cockpit_telemetry", None)
    devices = [device] if device.type == "cuda" else []
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices), (telemetry.paused() if telemetry is not None else nullcontext()):
            torch.manual_seed(seed)
            wanted = {"boxes": target["boxes"].to(device).float(), "labels": target["labels"].to(device)}
            images, targets = model.transform([image.to(device)], [wanted])
            features = model.backbone(images.tensors)
            anchors = model.rpn.anchor_generator(images, list(features.values()))[0]
            gt = targets[0]["boxes"]
            rpn_fg = float(model.rpn.proposal_matcher.high_threshold)
            if gt.numel():
                anchor_idx, unmatched = positive_anchors(box_iou(gt, anchors), rpn_fg)
                anchor_boxes = anchors[anchor_idx[:MAX_BOXES]]
            else:
                anchor_boxes, unmatched = anchors[:0], torch.zeros(0, dtype=torch.long)
            proposals, _ = model.rpn(images, features)
            sampled, _, labels, _ = model.roi_heads.select_training_samples(proposals, targets)
    finally:
        for module, training in modes.items():
            module.train(training)
    size = images.image_sizes[0]

    def back(boxes: torch.Tensor) -> list[list[float]]:
        return _rounded(resize_boxes(boxes, size, original)) if boxes.numel() else []

    return AssignmentOverlay(
        iter=iteration,
        index=index,
        split=split,
        gt_boxes=_rounded(target["boxes"]),
        gt_unmatched=[int(i) for i in unmatched.tolist()],
        positive_anchors=back(anchor_boxes),
        fg_proposals=back(_spread(sampled[0][labels[0] > 0], MAX_BOXES)),
        bg_proposals=back(_spread(sampled[0][labels[0] == 0], MAX_BOXES)),
        rpn_fg_iou_thresh=rpn_fg,
        roi_fg_iou_thresh=float(model.roi_heads.proposal_matcher.high_threshold),
    )
