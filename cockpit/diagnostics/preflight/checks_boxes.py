"""Checks on box geometry: degenerate, outside the image, normalized, xywh given as
xyxy, and whether the anchors can match the objects at all.
"""

from __future__ import annotations

import numpy as np

from cockpit.diagnostics.flags import Verdict
from cockpit.diagnostics.preflight.anchors import (
    RPN_FG_IOU,
    AnchorSpec,
    anchor_shapes,
    best_anchor_iou,
    resize_scale,
)
from cockpit.diagnostics.preflight.arrays import TargetArrays
from cockpit.diagnostics.preflight.evidence import (
    box_text,
    examples,
    finite_boxes,
    offender_rows,
    plural,
    valid_boxes,
)
from cockpit.diagnostics.verdicts import flagged, not_checked, ok
from cockpit.engine.events import Severity


def check_degenerate_boxes(arrays: TargetArrays) -> Verdict:
    """x2 <= x1 or y2 <= y1 (or a NaN/Inf coordinate): torchvision raises on these mid-epoch."""
    rule = "degenerate_boxes"
    if arrays.num_boxes == 0:
        return ok(rule, "no boxes")
    bad = ~valid_boxes(arrays)
    n = int(bad.sum())
    if n == 0:
        return ok(rule, f"all {arrays.num_boxes} boxes have x2 > x1 and y2 > y1")
    rows = arrays.box_image[bad]
    first = int(np.flatnonzero(bad)[0])
    return flagged(
        rule,
        Severity.ERROR,
        f"{n} of {arrays.num_boxes} boxes in {plural(np.unique(rows).size, 'image')} have x2 <= x1 or "
        f"y2 <= y1, e.g. {box_text(arrays.boxes[first])} in {arrays.name(int(arrays.box_image[first]))}; "
        f"offenders: {examples(arrays, rows)}",
        "zero-size or inverted boxes (an annotation slip, or boxes not in x1, y1, x2, y2 order); "
        "torchvision stops training with 'All bounding boxes should have positive height and width'",
        "fix or drop these boxes (keep only x2 > x1 and y2 > y1); if most are bad, check the box "
        "format (xyxy pixels expected)",
        count=n,
        samples=offender_rows(arrays, rows),
    )


def check_boxes_outside(arrays: TargetArrays, tolerance: float = 1.0) -> Verdict:
    """Boxes beyond the image: partly (clipping to the image keeps a box) or entirely
    (clipping leaves nothing -- the box is wrong, e.g. another image's or a wrong scale)."""
    rule = "boxes_outside_image"
    w, h = arrays.box_sizes()
    known = np.isfinite(w) & np.isfinite(h)
    use = valid_boxes(arrays) & known
    if not use.any():
        return not_checked(rule, "no boxes with known image size") if arrays.num_boxes else ok(rule, "no boxes")
    b = arrays.boxes
    tol = tolerance
    partly = use & ((b[:, 0] < -tol) | (b[:, 1] < -tol) | (b[:, 2] > w + tol) | (b[:, 3] > h + tol))
    entirely = use & ((b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= w) | (b[:, 1] >= h))
    partly &= ~entirely
    n_part, n_out = int(partly.sum()), int(entirely.sum())
    if n_part == 0 and n_out == 0:
        return ok(rule, f"all {int(use.sum())} boxes inside their images")
    parts = []
    if n_out:
        i = int(np.flatnonzero(entirely)[0])
        r = int(arrays.box_image[i])
        parts.append(
            f"{n_out} entirely outside (clipping would leave an empty box), e.g. {box_text(b[i])} on "
            f"{arrays.name(r)} ({w[i]:g}x{h[i]:g})"
        )
    if n_part:
        i = int(np.flatnonzero(partly)[0])
        r = int(arrays.box_image[i])
        parts.append(
            f"{n_part} partly outside (clipping to the image keeps them), e.g. {box_text(b[i])} on "
            f"{arrays.name(r)} ({w[i]:g}x{h[i]:g})"
        )
    rows = arrays.box_image[partly | entirely]
    return flagged(
        rule,
        Severity.ERROR if n_out else Severity.WARNING,
        "; ".join(parts) + f"; offenders: {examples(arrays, rows)}",
        "boxes annotated on a different image size (resized or EXIF-rotated images), or a box "
        "format other than xyxy pixels" if n_out else "annotations that run over the image border",
        "clip boxes to [0, width] x [0, height] (torchvision.ops.clip_boxes_to_image) and drop "
        "the ones left empty; check that the annotated image sizes match the files",
        partly=n_part,
        entirely=n_out,
        samples=offender_rows(arrays, rows),
    )


def check_normalized_coords(arrays: TargetArrays, min_image_side: float = 16.0) -> Verdict:
    """Images whose boxes all lie within [0, 1] although the image is much larger:
    normalized coordinates that the model will read as pixels (boxes in the corner)."""
    rule = "normalized_coords"
    if arrays.num_boxes == 0:
        return ok(rule, "no boxes")
    b = arrays.boxes
    eps = 1e-6
    unit = finite_boxes(arrays) & np.all((b >= -eps) & (b <= 1.0 + eps), axis=1)
    per_image = np.bincount(arrays.box_image, weights=unit.astype(np.float64), minlength=arrays.num_images)
    side = np.minimum(arrays.widths, arrays.heights)
    big = ~(side < min_image_side)  # unknown sizes count: a [0, 1] box is at most one pixel anyway
    norm_images = (arrays.box_counts > 0) & (per_image == arrays.box_counts) & big
    n_img = int(norm_images.sum())
    if n_img == 0:
        return ok(rule, "no image has all its boxes within [0, 1]")
    boxes_in = int(arrays.box_counts[norm_images].sum())
    rows = np.flatnonzero(norm_images)
    first = int(rows[0])
    i = int(np.flatnonzero(arrays.box_image == first)[0])
    size = f" on a {arrays.widths[first]:g}x{arrays.heights[first]:g} image" if np.isfinite(side[first]) else ""
    return flagged(
        rule,
        Severity.ERROR if boxes_in * 2 >= arrays.num_boxes else Severity.WARNING,
        f"{n_img} of {arrays.num_images} images ({boxes_in} boxes) have every box within [0, 1], e.g. "
        f"{box_text(b[i])}{size} in {arrays.name(first)}; offenders: {examples(arrays, rows)}",
        "normalized coordinates (0-1) given where pixels are expected: the model learns boxes "
        "crowded in the top-left corner",
        "multiply x by the image width and y by the height (xyxy pixels); YOLO-style "
        "(cx, cy, w, h) normalized labels also need converting to corners",
        images=n_img,
        boxes=boxes_in,
        samples=offender_rows(arrays, rows),
    )


def check_xywh_as_xyxy(
    arrays: TargetArrays, tolerance: float = 1.0, min_share: float = 0.3, explained_share: float = 0.8
) -> Verdict:
    """Boxes that are wrong as (x1, y1, x2, y2) but fit the image as (x, y, w, h).

    Told apart only when it is clear: at least ``min_share`` of all boxes are invalid or
    overflow as xyxy and valid as xywh, and xywh explains ``explained_share`` of the
    broken ones. A few typos do not trigger it (they show as degenerate boxes).
    """
    rule = "xywh_as_xyxy"
    w, h = arrays.box_sizes()
    known = np.isfinite(w) & np.isfinite(h)
    use = finite_boxes(arrays) & known
    n = int(use.sum())
    if n == 0:
        return not_checked(rule, "no boxes with known image size") if arrays.num_boxes else ok(rule, "no boxes")
    b = arrays.boxes
    tol = tolerance
    bad_xyxy = use & ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]) | (b[:, 2] > w + tol) | (b[:, 3] > h + tol))
    ok_xywh = (
        use & (b[:, 2] > 0) & (b[:, 3] > 0) & (b[:, 0] >= -tol) & (b[:, 1] >= -tol)
        & (b[:, 0] + b[:, 2] <= w + tol) & (b[:, 1] + b[:, 3] <= h + tol)
    )
    explained = bad_xyxy & ok_xywh
    n_bad, n_exp = int(bad_xyxy.sum()), int(explained.sum())
    if n_exp >= 2 and n_exp >= min_share * n and n_exp >= explained_share * n_bad:
        rows = arrays.box_image[explained]
        i = int(np.flatnonzero(explained)[0])
        return flagged(
            rule,
            Severity.ERROR,
            f"{n_exp} of {n} boxes are invalid as (x1, y1, x2, y2) but fit the image as (x, y, w, h), "
            f"e.g. {box_text(b[i])} in {arrays.name(int(arrays.box_image[i]))} ({w[i]:g}x{h[i]:g}); "
            f"offenders: {examples(arrays, rows)}",
            "boxes given as (x, y, width, height) -- COCO's bbox format -- where torchvision wants "
            "corners (x1, y1, x2, y2)",
            "convert: x2 = x + w, y2 = y + h (torchvision.ops.box_convert(boxes, 'xywh', 'xyxy'))",
            count=n_exp,
            samples=offender_rows(arrays, rows),
        )
    return ok(rule, f"{n_exp} of {n} boxes would only make sense as xywh")


def check_anchor_coverage(
    arrays: TargetArrays,
    anchors: AnchorSpec,
    *,
    iou_thresh: float = RPN_FG_IOU,
    poor_iou: float = 0.4,
    max_share: float = 0.2,
) -> Verdict:
    """Resize every box as GeneralizedRCNNTransform will, then the share whose best IoU
    with any (centred) anchor is below the RPN foreground threshold (0.7).

    That share is reported, but it is not what flags: with anchors an octave apart, a
    square box midway between two anchor sizes has a best IoU of exactly 0.5, so about
    half of any natural dataset sits below 0.7 and torchvision copes through its
    low-quality matches. Flagged is a share above ``max_share`` of boxes whose best IoU
    is below ``poor_iou`` -- objects outside what the anchors were designed for (far
    smaller, larger or more elongated), which the RPN really cannot learn.
    """
    rule = "anchor_coverage"
    w_img, h_img = arrays.box_sizes()
    use = valid_boxes(arrays) & np.isfinite(w_img) & np.isfinite(h_img) & (w_img > 0) & (h_img > 0)
    n = int(use.sum())
    if n == 0:
        return not_checked(rule, "no valid boxes with known image size") if arrays.num_boxes else ok(rule, "no boxes")
    b = arrays.boxes[use]
    scale = resize_scale(w_img[use], h_img[use], anchors.min_size, anchors.max_size)
    wh = np.stack([(b[:, 2] - b[:, 0]) * scale, (b[:, 3] - b[:, 1]) * scale], axis=1)
    best = best_anchor_iou(wh, anchor_shapes(anchors.sizes, anchors.aspect_ratios))
    below = float((best < iou_thresh).mean())
    low = best < poor_iou
    share = float(low.mean())
    desc = (
        f"after resizing (min_size {anchors.min_size:g}, max_size {anchors.max_size:g}) with anchors "
        f"{'/'.join(f'{s:g}' for s in anchors.sizes)} px x ratios {'/'.join(f'{r:g}' for r in anchors.aspect_ratios)}"
    )
    if share <= max_share:
        return ok(
            rule,
            f"{share:.0%} of {n} boxes match no anchor even at IoU {poor_iou:g} ({below:.0%} below "
            f"{iou_thresh:g}, normal for anchors an octave apart) {desc}",
        )
    evidence = (
        f"{share:.0%} of {n} boxes ({int(low.sum())}) have no anchor with IoU >= {poor_iou:g} ({below:.0%} "
        f"below the RPN's {iou_thresh:g}) {desc}"
    )
    rows = arrays.box_image[np.flatnonzero(use)[low]]
    return _poor_coverage(rule, arrays, anchors, np.sqrt(wh[:, 0] * wh[:, 1]), low, rows, evidence,
                          share=share, share_below_fg=below)


def _poor_coverage(
    rule: str, arrays: TargetArrays, anchors: AnchorSpec, side: np.ndarray, low: np.ndarray, rows: np.ndarray,
    evidence: str, **data: float,
) -> Verdict:
    """The anchor-coverage flag: which boxes miss (too small, too large, too elongated) and what to change."""
    small = low & (side < min(anchors.sizes))
    large = low & (side > max(anchors.sizes))
    odd = low & ~small & ~large
    kinds = []
    if small.any():
        kinds.append(f"{int(small.sum())} smaller than the smallest anchor (median {float(np.median(side[small])):.0f} px)")
    if large.any():
        kinds.append(f"{int(large.sum())} larger than the largest anchor")
    if odd.any():
        kinds.append(f"{int(odd.sum())} too elongated for the aspect ratios")
    fix = (
        "raise model.min_size / model.max_size so small objects are resized larger, or crop/tile "
        "the images; objects far smaller than the anchors need a model with smaller anchors "
        "(the tiny preset uses 16-128 px)"
        if small.any() else "add aspect ratios / sizes that match these objects, or change model.min_size"
    )
    return flagged(
        rule,
        Severity.WARNING,
        evidence + ": " + "; ".join(kinds) + f"; e.g. {examples(arrays, rows)}",
        "the RPN only gets its single best low-quality match for these objects, so they train "
        "weakly and are often missed",
        fix,
        count=int(low.sum()),
        small=int(small.sum()),
        large=int(large.sum()),
        elongated=int(odd.sum()),
        **data,
    )
