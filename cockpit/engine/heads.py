"""Our RoI heads and RPN pieces: torchvision's, plus telemetry, loss choices and OHEM.

:func:`install` swaps the RPN's matcher / sampler for the recording ones of
``engine/assignment.py`` and the box head for :class:`CockpitRoIHeads`, a subclass of
torchvision's ``RoIHeads`` built from the same modules -- no new parameter, so state_dict
keys stay torchvision's and a checkpoint loads ``strict=True`` into the stock model.
:func:`apply_settings` sets the ``[loss]`` / ``[sampler]`` values; they are plain
attributes read at every forward, so the trainer can call it again between iterations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss

from cockpit.engine.assignment import (
    AssignmentTelemetry,
    RecordingMatcher,
    RecordingSampler,
    RecordingSimilarity,
    record_accuracy,
)
from cockpit.engine.losses import box_head_loss


class CockpitRoIHeads(RoIHeads):
    """torchvision's box head; the training branch computes the configured losses.

    In eval mode (and for mask / keypoint heads, which cockpit does not build) it is
    torchvision's ``forward`` unchanged.
    """

    def __init__(self, *args, telemetry: AssignmentTelemetry, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.telemetry = telemetry
        self.loss_settings = None
        """A LossSection (or anything with its fields); None means torchvision's recipe."""
        self._candidates: list[torch.Tensor] | None = None
        self._scorer = None

    @classmethod
    def adopt(cls, heads: RoIHeads, telemetry: AssignmentTelemetry) -> "CockpitRoIHeads":
        """The same modules and hyper-parameters as ``heads`` (which it replaces)."""
        matcher, sampler = heads.proposal_matcher, heads.fg_bg_sampler
        new = cls(
            heads.box_roi_pool,
            heads.box_head,
            heads.box_predictor,
            matcher.high_threshold,
            matcher.low_threshold,
            sampler.batch_size_per_image,
            sampler.positive_fraction,
            heads.box_coder.weights,
            heads.score_thresh,
            heads.nms_thresh,
            heads.detections_per_img,
            telemetry=telemetry,
        )
        new.box_coder.bbox_xform_clip = heads.box_coder.bbox_xform_clip
        new.fg_bg_sampler = RecordingSampler(sampler.batch_size_per_image, sampler.positive_fraction, telemetry, "roi")
        new.train(heads.training)
        return new

    def forward(self, features, proposals, image_shapes, targets=None):
        if not self.training or self.has_mask() or self.has_keypoint() or targets is None:
            return super().forward(features, proposals, image_shapes, targets)
        for target in targets:
            if target["boxes"].dtype not in (torch.float, torch.double, torch.half):
                raise TypeError(f"target boxes must of float type, instead got {target['boxes'].dtype}")
            if target["labels"].dtype != torch.int64:
                raise TypeError(f"target labels must of int64 type, instead got {target['labels'].dtype}")
        settings = self.loss_settings
        hard = bool(settings is not None and settings.hard_negatives)
        self._scorer = (lambda candidates: self._background_losses(features, candidates, image_shapes)) if hard else None
        try:
            proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        finally:
            self._scorer, self._candidates = None, None
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        if settings is None:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
        else:
            loss_classifier, loss_box_reg = box_head_loss(
                class_logits, box_regression, labels, regression_targets, proposals, self.box_coder, settings
            )
        record_accuracy(self.telemetry, class_logits, torch.cat(labels, dim=0))
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

    # -- OHEM ---------------------------------------------------------------------------
    # torchvision's select_training_samples calls add_gt_proposals, then (after matching)
    # subsample(labels); the two overrides below let OHEM rank the very candidates that
    # torchvision is sampling from without copying the rest of that method.
    def add_gt_proposals(self, proposals, gt_boxes):
        proposals = super().add_gt_proposals(proposals, gt_boxes)
        if self._scorer is not None:
            self._candidates = proposals
        return proposals

    def subsample(self, labels):
        if self._scorer is None or self._candidates is None:
            return super().subsample(labels)
        # Positives and the number of negatives exactly as torchvision samples them; then
        # the negatives themselves are the highest-loss background candidates.
        positive, negative = self.fg_bg_sampler(labels)
        losses = self._scorer(self._candidates)
        sampled = []
        for labels_img, pos_img, neg_img, loss_img in zip(labels, positive, negative, losses):
            candidates = labels_img == 0
            score = torch.where(candidates, loss_img, torch.full_like(loss_img, -float("inf")))
            order = torch.argsort(score, descending=True)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(order.numel(), device=order.device)
            hard = (rank < neg_img.sum()) & candidates
            sampled.append(torch.where(pos_img.bool() | hard)[0])
        return sampled

    @torch.no_grad()
    def _background_losses(self, features, candidates, image_shapes) -> list[torch.Tensor]:
        """Each candidate's classification loss as background, from a no-grad box head pass.

        BatchNorm layers (fasterrcnn_resnet50_fpn_v2's box head has some) run in eval mode
        here, so ranking the candidates leaves their running statistics untouched.
        """
        norms = [m for m in self.box_head.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
        for module in norms:
            module.eval()
        try:
            logits, _ = self.box_predictor(self.box_head(self.box_roi_pool(features, candidates, image_shapes)))
        finally:
            for module in norms:
                module.train()
        background = torch.zeros(logits.shape[0], dtype=torch.int64, device=logits.device)
        losses = F.cross_entropy(logits.float(), background, reduction="none")
        return list(losses.split([c.shape[0] for c in candidates]))


def install(model: nn.Module) -> AssignmentTelemetry:
    """Swap in the recording RPN pieces and :class:`CockpitRoIHeads`; returns the telemetry."""
    telemetry = AssignmentTelemetry()
    rpn = model.rpn
    matcher, sampler = rpn.proposal_matcher, rpn.fg_bg_sampler
    # Remembered so that an unset sampler.*_batch_size_per_image means the architecture's own.
    model.cockpit_arch_batch = {
        "rpn_batch_size_per_image": sampler.batch_size_per_image,
        "roi_batch_size_per_image": model.roi_heads.fg_bg_sampler.batch_size_per_image,
    }
    rpn.proposal_matcher = RecordingMatcher(
        matcher.high_threshold, matcher.low_threshold, matcher.allow_low_quality_matches, telemetry
    )
    rpn.fg_bg_sampler = RecordingSampler(sampler.batch_size_per_image, sampler.positive_fraction, telemetry, "rpn")
    rpn.box_similarity = RecordingSimilarity(rpn.box_similarity, telemetry)
    model.roi_heads = CockpitRoIHeads.adopt(model.roi_heads, telemetry)
    model.cockpit_telemetry = telemetry
    return telemetry


def smallest_anchor(model: nn.Module) -> float | None:
    """The smallest anchor side the RPN's generator makes (model input pixels), if known."""
    sizes = getattr(getattr(getattr(model, "rpn", None), "anchor_generator", None), "sizes", None)
    flat = [float(s) for level in sizes or () for s in (level if isinstance(level, (tuple, list)) else (level,))]
    return min(flat) if flat else None


def effective_sampler(model: nn.Module, sampler) -> dict[str, float]:
    """The ``[sampler]`` values in force, unset batch sizes resolved to the architecture's."""
    values = dict(sampler.model_dump()) if hasattr(sampler, "model_dump") else dict(vars(sampler))
    defaults = getattr(model, "cockpit_arch_batch", {})
    for key, default in defaults.items():
        if values.get(key) is None:
            values[key] = default
    return values


def apply_settings(model: nn.Module, config) -> None:
    """Apply ``config.loss`` and ``config.sampler`` to an :func:`install`-ed model (any time)."""
    values = effective_sampler(model, config.sampler)
    rpn, heads = model.rpn, model.roi_heads
    for stage, matcher, sampler in (("rpn", rpn.proposal_matcher, rpn.fg_bg_sampler),
                                    ("roi", heads.proposal_matcher, heads.fg_bg_sampler)):
        matcher.high_threshold = float(values[f"{stage}_fg_iou_thresh"])
        matcher.low_threshold = float(values[f"{stage}_bg_iou_thresh"])
        sampler.batch_size_per_image = int(values[f"{stage}_batch_size_per_image"])
        sampler.positive_fraction = float(values[f"{stage}_positive_fraction"])
    if isinstance(heads, CockpitRoIHeads):
        heads.loss_settings = config.loss
