"""Every rule the cockpit knows: stable id -> the symptom as the checklist names it.

The lesson's debugging table, row by row, plus the classic torchvision detection bugs.
The checklist pane lists these rows before any rule has run ("not yet checked").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleInfo:
    """One checklist row: ``id`` is stable (events, reports); ``title`` is for people."""

    id: str
    title: str
    stage: str
    """``preflight`` (dataset scan before training) or ``live`` (hooks during training)."""


LIVE_RULES: tuple[RuleInfo, ...] = (
    RuleInfo("nonfinite_loss", "Loss is NaN / Inf", "live"),
    RuleInfo("flat_loss", "Loss flat, no foreground matched", "live"),
    RuleInfo("rpn_chance", "RPN objectness stuck at chance", "live"),
    RuleInfo("divergence", "Loss diverging (LR too high)", "live"),
    RuleInfo("boxes_in_corner", "Boxes crowded in a corner", "live"),
    RuleInfo("no_val_detections", "Good train loss, zero val detections", "live"),
    RuleInfo("eval_probe", "No detections in eval mode", "live"),
    RuleInfo("cuda_oom", "CUDA out of memory", "live"),
    RuleInfo("data_bottleneck", "Data loading bottleneck", "live"),
    RuleInfo("no_anchor_match", "Objects no anchor can match", "live"),
    RuleInfo("fg_starved", "Box head starved of foreground", "live"),
    RuleInfo("classifier_background", "Classifier collapsed to background", "live"),
)

PREFLIGHT_RULES: tuple[RuleInfo, ...] = (
    RuleInfo("dataset_load", "Dataset opens", "preflight"),
    RuleInfo("degenerate_boxes", "Degenerate boxes (x2<=x1 or y2<=y1)", "preflight"),
    RuleInfo("boxes_outside_image", "Boxes outside the image", "preflight"),
    RuleInfo("normalized_coords", "Normalized coordinates (boxes in the corner)", "preflight"),
    RuleInfo("xywh_as_xyxy", "Boxes look like xywh given as xyxy", "preflight"),
    RuleInfo("label_zero", "Label 0 used for an object", "preflight"),
    RuleInfo("label_out_of_range", "Label >= num_classes", "preflight"),
    RuleInfo("class_mismatch", "Classes disagree with the data", "preflight"),
    RuleInfo("target_dtype", "Target dtypes / shapes", "preflight"),
    RuleInfo("image_range", "Images not float in [0, 1]", "preflight"),
    RuleInfo("unreadable_images", "Unreadable or missing images", "preflight"),
    RuleInfo("image_size_mismatch", "Image size differs from the annotation", "preflight"),
    RuleInfo("duplicate_image_ids", "Duplicate image ids", "preflight"),
    RuleInfo("empty_images", "Images without objects", "preflight"),
    RuleInfo("anchor_coverage", "Objects the anchors cannot match", "preflight"),
    RuleInfo("constant_images", "Images with constant pixels", "preflight"),
    RuleInfo("orphan_annotations", "Annotations for missing image ids", "preflight"),
    RuleInfo("empty_target_shape", "Empty targets shaped (0,)", "preflight"),
)

ALL_RULES: tuple[RuleInfo, ...] = LIVE_RULES + PREFLIGHT_RULES
RULES_BY_ID: dict[str, RuleInfo] = {rule.id: rule for rule in ALL_RULES}
