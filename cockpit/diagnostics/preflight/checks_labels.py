"""Checks on labels and target types: label 0, labels past num_classes, the class
list against the data, and dtypes/shapes of the targets before and after the transform.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cockpit.diagnostics.flags import Verdict
from cockpit.diagnostics.preflight.arrays import TargetArrays
from cockpit.diagnostics.preflight.evidence import examples, labels_known, offender_rows, plural
from cockpit.diagnostics.preflight.extract import ImageSample
from cockpit.diagnostics.verdicts import flagged, ok
from cockpit.engine.events import Severity


def check_label_zero(arrays: TargetArrays) -> Verdict:
    """Label 0 on an object: torchvision treats it as background, so it is never learned."""
    rule = "label_zero"
    zero = labels_known(arrays) & (arrays.labels == 0)
    n = int(zero.sum())
    if n == 0:
        return ok(rule, f"no box labelled 0 ({arrays.num_boxes} boxes)")
    rows = arrays.box_image[zero]
    everything = n == int(labels_known(arrays).sum())
    return flagged(
        rule,
        Severity.ERROR,
        f"{n} of {arrays.num_boxes} boxes in {plural(np.unique(rows).size, 'image')} have label 0"
        + (" (every box)" if everything else "")
        + f"; offenders: {examples(arrays, rows)}",
        "0-based class ids: label 0 is background in torchvision, so these objects teach the model "
        "that they are background" + (" -- nothing is left to detect" if everything else ""),
        "0 is background; your first class must be 1: use label = class index + 1 (data.classes "
        "lists classes 1..K in order)",
        count=n,
        samples=offender_rows(arrays, rows),
    )


def check_label_range(arrays: TargetArrays, num_classes: int, classes: Sequence[str] = ()) -> Verdict:
    """Labels >= num_classes (or negative): cross-entropy fails or reads another class."""
    rule = "label_out_of_range"
    known = labels_known(arrays)
    bad = known & ((arrays.labels >= num_classes) | (arrays.labels < 0))
    n = int(bad.sum())
    k = num_classes - 1
    if n == 0:
        return ok(rule, f"every label within 0..{k} (num_classes = {num_classes})")
    rows = arrays.box_image[bad]
    values = np.unique(arrays.labels[bad])
    shown = ", ".join(str(int(v)) for v in values[:8]) + (" ..." if values.size > 8 else "")
    names = f" ({', '.join(classes)})" if classes else ""
    return flagged(
        rule,
        Severity.ERROR,
        f"{n} boxes in {plural(np.unique(rows).size, 'image')} have labels {shown} but num_classes = "
        f"{num_classes} (background + {k} classes{names}), so labels must be 1..{k}; offenders: "
        f"{examples(arrays, rows)}",
        "data.classes lists fewer classes than the data uses, or labels are category ids "
        "rather than 1..K indices",
        f"list every class in data.classes (label i is classes[i-1]; the largest label here is "
        f"{int(values.max())}) or remap the labels to 1..{k}",
        count=n,
        labels=[int(v) for v in values[:50]],
        samples=offender_rows(arrays, rows),
    )


def check_class_mismatch(
    arrays: TargetArrays, classes: Sequence[str], *, split: str = "train"
) -> Verdict:
    """Config ``classes`` against the data: the adapter's own class list, the data's
    category names (COCO) and classes with no box at all in the split."""
    rule = "class_mismatch"
    classes = list(classes)
    problems: list[str] = []
    severity = Severity.INFO
    if arrays.dataset_classes is not None and list(arrays.dataset_classes) != classes:
        problems.append(f"the dataset names its classes {arrays.dataset_classes} but data.classes is {classes}")
        severity = Severity.ERROR
    if arrays.category_names is not None:
        extra = [c for c in arrays.category_names if c not in classes]
        missing = [c for c in classes if c not in arrays.category_names]
        if extra:
            problems.append(f"categories in the data but not in data.classes: {', '.join(extra)}")
            severity = Severity.ERROR
        if missing:
            problems.append(f"data.classes not among the data's categories: {', '.join(missing)}")
            severity = Severity.ERROR
    known = labels_known(arrays) & (arrays.labels >= 1) & (arrays.labels <= len(classes))
    unused: list[str] = []
    if known.any():
        counts = np.bincount(arrays.labels[known], minlength=len(classes) + 1)
        unused = [classes[i - 1] for i in range(1, len(classes) + 1) if counts[i] == 0]
        if unused:
            problems.append(f"classes with no box in {split}: {', '.join(unused)}")
            if split == "train" and severity != Severity.ERROR:
                severity = Severity.WARNING
    if not problems:
        return ok(rule, f"{len(classes)} classes, each with boxes in {split}")
    return flagged(
        rule,
        severity,
        "; ".join(problems),
        "data.classes does not describe this dataset (names, order or count)",
        "make data.classes list exactly the data's classes in label order (1..K); a class with "
        "no training boxes can never be learned -- drop it or add data",
        unused=unused,
    )


_DTYPE_FIXES = {
    "boxes_dtype": "boxes must be float32: torch.as_tensor(boxes, dtype=torch.float32) "
                   "(torchvision: 'target boxes must be of float type')",
    "labels_dtype": "labels must be int64: torch.as_tensor(labels, dtype=torch.int64) "
                    "(torchvision: 'target labels must be of int64 type')",
    "boxes_shape": "boxes must be shaped (N, 4)",
    "empty_shape": "an image without objects needs boxes shaped (0, 4): torch.zeros((0, 4), dtype=torch.float32)",
    "count_mismatch": "give exactly one label per box",
    "target_keys": "the target needs 'boxes' and 'labels'",
    "target_error": "raw_target raised: fix the annotation or the dataset code",
    "image_id": "image_id must be an int",
    "after_transform": "the transform changed the target types: keep boxes float32 and labels int64",
}


def check_target_dtypes(arrays: TargetArrays, samples: Sequence[ImageSample] = ()) -> Verdict:
    """Boxes not float (N, 4), labels not int64, empty targets not (0, 4), plus what the
    transform hands the model (from the decoded ``samples``)."""
    rule = "target_dtype"
    by_kind: dict[str, list[tuple[int, str]]] = {}
    for row, kind, detail in arrays.problems:
        by_kind.setdefault(kind, []).append((row, detail))
    for s in samples:
        for detail in s.target_problems:
            by_kind.setdefault("after_transform", []).append((-1 - s.index, detail))
    if not by_kind:
        return ok(rule, f"{arrays.num_images} targets: float (N, 4) boxes, int64 labels")
    parts, fixes = [], []
    for kind, items in by_kind.items():
        rows = [r for r, _ in items if r >= 0]
        details = sorted({d for _, d in items})
        where = examples(arrays, np.asarray(rows)) if rows else ", ".join(f"#{-1 - r}" for r, _ in items[:3])
        parts.append(f"{kind.replace('_', ' ')} in {len(items)} target(s) ({'; '.join(details[:3])}): {where}")
        fixes.append(_DTYPE_FIXES.get(kind, kind))
    return flagged(
        rule,
        Severity.ERROR,
        "; ".join(parts),
        "targets built from Python lists / numpy without explicit dtypes, or an empty box list "
        "turned into a (0,) tensor",
        "; ".join(fixes),
        kinds=sorted(by_kind),
    )
