"""The model's resize and anchors, as the pre-flight's coverage check assumes them.

Pure numpy: the same shapes torchvision's ``AnchorGenerator`` and
``GeneralizedRCNNTransform`` produce, without building a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

RPN_FG_IOU = 0.7
"""torchvision's ``rpn_fg_iou_thresh``: an anchor needs this IoU with a box to be foreground."""


@dataclass(frozen=True)
class AnchorSpec:
    """How the model resizes images and which anchors its RPN uses: one value handed to
    every check and scan that needs them."""

    min_size: int
    max_size: int
    sizes: tuple[int, ...]
    """Every anchor size, all levels together (each FPN level holds one or several)."""
    aspect_ratios: tuple[float, ...]
    """Height / width, as torchvision's ``AnchorGenerator``."""


# The torchvision builders' own values (models/detection/faster_rcnn.py); tiny is ours
# (cockpit.engine.model._build_tiny). Kept as a table: building a ResNet-50 only to read its
# anchor generator would cost seconds and hundreds of MB before a dataset check.
ARCH_ANCHORS: dict[str, AnchorSpec] = {
    "fasterrcnn_resnet50_fpn": AnchorSpec(800, 1333, (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)),
    "fasterrcnn_resnet50_fpn_v2": AnchorSpec(800, 1333, (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)),
    "fasterrcnn_mobilenet_v3_large_fpn": AnchorSpec(800, 1333, (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)),
    "fasterrcnn_mobilenet_v3_large_320_fpn": AnchorSpec(320, 640, (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)),
    "tiny": AnchorSpec(160, 160, (16, 32, 64, 128), (0.5, 1.0, 2.0)),
}


def anchor_spec(config: Any) -> AnchorSpec:
    """The resize and anchors of ``config.model`` (min/max_size overrides applied)."""
    arch = getattr(config.model, "arch", "fasterrcnn_resnet50_fpn")
    base = ARCH_ANCHORS.get(arch, ARCH_ANCHORS["fasterrcnn_resnet50_fpn"])
    min_size = getattr(config.model, "min_size", None) or base.min_size
    max_size = getattr(config.model, "max_size", None) or base.max_size
    return AnchorSpec(int(min_size), int(max_size), base.sizes, base.aspect_ratios)


def anchor_shapes(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """(A, 2) anchor ``(width, height)`` exactly as torchvision's ``AnchorGenerator`` makes
    them: ``h = size * sqrt(r)``, ``w = size / sqrt(r)``, corners rounded to integers."""
    s = np.asarray(sizes, dtype=np.float64)[:, None]
    r = np.sqrt(np.asarray(aspect_ratios, dtype=np.float64))[None, :]
    w = 2.0 * np.round(s / r / 2.0)
    h = 2.0 * np.round(s * r / 2.0)
    return np.stack([w.ravel(), h.ravel()], axis=1)


def best_anchor_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(N,) best IoU of each box ``(w, h)`` with any anchor ``(w, h)``, both centred at the
    same point -- the optimistic case of an anchor at every position."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    if wh.shape[0] == 0:
        return np.empty(0)
    bw, bh = wh[:, 0:1], wh[:, 1:2]
    aw, ah = anchors[None, :, 0], anchors[None, :, 1]
    inter = np.minimum(bw, aw) * np.minimum(bh, ah)
    union = bw * bh + aw * ah - inter
    return np.max(inter / np.maximum(union, 1e-12), axis=1)


def resize_scale(width: np.ndarray, height: np.ndarray, min_size: float, max_size: float) -> np.ndarray:
    """GeneralizedRCNNTransform's scale: ``min(min_size / short side, max_size / long side)``."""
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    short = np.minimum(w, h)
    long = np.maximum(w, h)
    return np.minimum(min_size / short, max_size / long)
