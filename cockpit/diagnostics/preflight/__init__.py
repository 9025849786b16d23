"""Pre-flight dataset check: every train and val target scanned once before training.

Three layers, so each check is a pure, separately tested function:

1. **Extraction** (:mod:`.extract`: :func:`extract_targets`, :func:`read_image_headers`,
   :func:`sample_images`) -- the only I/O. Targets come from ``raw_target`` and sizes from
   ``sample_info`` (COCO: the JSON), never from decoding an image; files are opened for
   their header only; a handful of samples are decoded through the real pipeline to see
   what the model will get. Everything lands in one :class:`TargetArrays` of flat numpy
   arrays (one row per image, one row per box; :mod:`.arrays`).
2. **Checks** (``check_*`` in :mod:`.checks_boxes`, :mod:`.checks_labels`,
   :mod:`.checks_images`) -- pure functions from :class:`TargetArrays` (plus the model's
   resize and anchors as one :class:`AnchorSpec`, :mod:`.anchors`) to a :class:`Verdict`,
   vectorised over all boxes, so 100,000 boxes take milliseconds. Evidence names the first
   offenders (file name and sample index) and a count (:mod:`.evidence`); the fix says
   what to change. Verdicts are built with the helpers the live rules use
   (:mod:`cockpit.diagnostics.verdicts`).
3. **Report** (:mod:`.report`: :class:`PreflightReport`, :func:`run_preflight`;
   :mod:`.table`: :func:`format_table`) -- verdicts and summaries of both splits, written
   to ``<run_dir>/preflight.json`` and printed by ``cockpit check``.
"""

from cockpit.diagnostics.preflight.anchors import (
    ARCH_ANCHORS,
    RPN_FG_IOU,
    AnchorSpec,
    anchor_shapes,
    anchor_spec,
    best_anchor_iou,
    resize_scale,
)
from cockpit.diagnostics.preflight.arrays import (
    BOX_SIZE_EDGES,
    BOX_SIZE_LABELS,
    FILE_MISSING,
    FILE_OK,
    FILE_UNCHECKED,
    FILE_UNREADABLE,
    LABEL_MISSING,
    TargetArrays,
)
from cockpit.diagnostics.preflight.checks_boxes import (
    check_anchor_coverage,
    check_boxes_outside,
    check_degenerate_boxes,
    check_normalized_coords,
    check_xywh_as_xyxy,
)
from cockpit.diagnostics.preflight.checks_images import (
    check_duplicate_image_ids,
    check_empty_images,
    check_image_range,
    check_image_sizes,
    check_unreadable_images,
)
from cockpit.diagnostics.preflight.checks_labels import (
    check_class_mismatch,
    check_label_range,
    check_label_zero,
    check_target_dtypes,
)
from cockpit.diagnostics.preflight.extract import (
    ImageSample,
    arrays_from_coco,
    extract_targets,
    fill_sizes_by_decoding,
    read_image_headers,
    sample_images,
    spread_indices,
)
from cockpit.diagnostics.preflight.report import (
    PreflightReport,
    SplitScan,
    box_size_histogram,
    class_histogram,
    run_preflight,
    scan_arrays,
    scan_dataset,
    scan_split,
    verdict_dict,
)
from cockpit.diagnostics.preflight.table import format_table

__all__ = [
    "ARCH_ANCHORS", "BOX_SIZE_EDGES", "BOX_SIZE_LABELS", "FILE_MISSING", "FILE_OK", "FILE_UNCHECKED",
    "FILE_UNREADABLE", "LABEL_MISSING", "RPN_FG_IOU", "AnchorSpec", "ImageSample", "PreflightReport", "SplitScan",
    "TargetArrays", "anchor_shapes", "anchor_spec", "arrays_from_coco", "best_anchor_iou", "box_size_histogram",
    "check_anchor_coverage", "check_boxes_outside", "check_class_mismatch", "check_degenerate_boxes",
    "check_duplicate_image_ids", "check_empty_images", "check_image_range", "check_image_sizes",
    "check_label_range", "check_label_zero", "check_normalized_coords", "check_target_dtypes",
    "check_unreadable_images", "check_xywh_as_xyxy", "class_histogram", "extract_targets",
    "fill_sizes_by_decoding", "format_table", "read_image_headers", "resize_scale", "run_preflight",
    "sample_images", "scan_arrays", "scan_dataset", "scan_split", "spread_indices", "verdict_dict",
]
