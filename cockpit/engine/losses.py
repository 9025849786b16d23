"""The box head's losses as the ``[loss]`` section chooses them.

With the defaults (smooth L1 with beta 1/9, cross-entropy) this is torchvision's own
``fastrcnn_loss``, called as is, so the numbers are exactly stock torchvision's. The other
choices keep its normalisation -- the sum over foreground RoIs divided by the number of
sampled RoIs, as torchvision and detectron2 (``fast_rcnn.py``, GIoU included) both do --
so a curve stays comparable when the loss is switched mid-run.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.ops import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss

TORCHVISION_BETA = 1.0 / 9.0

_IOU_LOSSES = {
    "giou": generalized_box_iou_loss,
    "diou": distance_box_iou_loss,
    "ciou": complete_box_iou_loss,
}


def is_stock(settings) -> bool:
    """True when ``settings`` (a LossSection) is exactly torchvision's recipe."""
    return (
        settings.box == "smooth_l1"
        and math.isclose(settings.box_beta, TORCHVISION_BETA, rel_tol=0, abs_tol=1e-12)
        and settings.classifier == "ce"
    )


def classification_loss(class_logits: torch.Tensor, labels: torch.Tensor, settings) -> torch.Tensor:
    """Cross-entropy, or a softmax focal loss: mean over RoIs of (1 - p_t)^gamma * CE.

    Softmax rather than ``torchvision.ops.sigmoid_focal_loss``: the box head scores
    background as one of its classes and torchvision's inference takes a softmax over them,
    so a one-vs-all sigmoid loss would train scores that inference then reads differently.
    """
    if settings.classifier == "ce":
        return F.cross_entropy(class_logits, labels)
    ce = F.cross_entropy(class_logits.float(), labels, reduction="none")
    p_t = torch.exp(-ce)
    return ((1.0 - p_t) ** settings.focal_gamma * ce).mean()


def box_regression_loss(
    deltas: torch.Tensor, target_deltas: torch.Tensor, proposals: torch.Tensor, box_coder, settings
) -> torch.Tensor:
    """Summed loss over the foreground RoIs (the caller divides by the sampled RoI count).

    IoU losses compare the decoded boxes (prediction and its GT, both from the same
    proposal through torchvision's box coder); torchvision.ops computes them.
    """
    if settings.box == "smooth_l1":
        return F.smooth_l1_loss(deltas, target_deltas, beta=settings.box_beta, reduction="sum")
    if settings.box == "l1":
        return F.l1_loss(deltas, target_deltas, reduction="sum")
    proposals = proposals.float()
    predicted = box_coder.decode_single(deltas.float(), proposals)
    target = box_coder.decode_single(target_deltas.float(), proposals)
    return _IOU_LOSSES[settings.box](predicted, target, reduction="sum")


def box_head_loss(
    class_logits: torch.Tensor,
    box_regression: torch.Tensor,
    labels: list[torch.Tensor],
    regression_targets: list[torch.Tensor],
    proposals: list[torch.Tensor],
    box_coder,
    settings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss_classifier, loss_box_reg) for the sampled RoIs of every image."""
    if is_stock(settings):
        return fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
    labels_all = torch.cat(labels, dim=0)
    targets_all = torch.cat(regression_targets, dim=0)
    loss_classifier = classification_loss(class_logits, labels_all, settings)
    positive = torch.where(labels_all > 0)[0]
    labels_pos = labels_all[positive]
    count = class_logits.shape[0]
    box_regression = box_regression.reshape(count, box_regression.size(-1) // 4, 4)
    summed = box_regression_loss(
        box_regression[positive, labels_pos],
        targets_all[positive],
        torch.cat(proposals, dim=0)[positive],
        box_coder,
        settings,
    )
    return loss_classifier, summed / labels_all.numel()
