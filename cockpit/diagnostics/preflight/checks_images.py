"""Checks on the images: decoded pixel range, missing or unreadable files, declared
sizes against the files, duplicate ids, images without objects.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cockpit.diagnostics.flags import Verdict
from cockpit.diagnostics.preflight.arrays import (
    FILE_MISSING,
    FILE_UNCHECKED,
    FILE_UNREADABLE,
    FLOAT_NAMES,
    TargetArrays,
)
from cockpit.diagnostics.preflight.evidence import examples, offender_rows
from cockpit.diagnostics.preflight.extract import ImageSample
from cockpit.diagnostics.verdicts import flagged, not_checked, ok
from cockpit.engine.events import Severity


def check_image_range(samples: Sequence[ImageSample]) -> Verdict:
    """Decoded samples must be float CHW tensors in [0, 1]: the model normalises itself
    with ImageNet mean/std, expecting [0, 1] input."""
    rule = "image_range"
    if not samples:
        return not_checked(rule, "no sample decoded")
    errors, problems, warnings = [], [], []
    for s in samples:
        if s.error:
            errors.append(f"{s.name}: {s.error}")
            continue
        if s.kind != "tensor":
            problems.append(f"{s.name} is a {s.kind} {s.dtype}, not a tensor (add transforms.v2.ToImage())")
            continue
        if s.dtype not in FLOAT_NAMES:
            problems.append(f"{s.name} is {s.dtype} in [{s.min:g}, {s.max:g}] (not float)")
            continue
        if len(s.shape) != 3 or s.shape[0] != 3:
            problems.append(f"{s.name} has shape {s.shape}, expected 3xHxW (channels first, RGB)")
        if s.max > 1.0 + 1e-3:
            problems.append(f"{s.name} is {s.dtype} in [{s.min:g}, {s.max:g}] (0-255 floats?)")
        elif s.min < -1e-3:
            warnings.append(f"{s.name} has values in [{s.min:g}, {s.max:g}] (already mean/std normalised?)")
        elif 0 < s.max <= 1.0 / 255.0 + 1e-6:
            warnings.append(f"{s.name} peaks at {s.max:g} (scaled by 1/255 twice?)")
    checked = len(samples)
    if errors:
        return flagged(
            rule,
            Severity.ERROR,
            f"{len(errors)} of {checked} samples failed to load through the pipeline: " + "; ".join(errors[:3]),
            "the image cannot be decoded or the transform fails on it",
            "open the named files; check the dataset's __getitem__ and transforms on those indices",
        )
    if problems or warnings:
        return flagged(
            rule,
            Severity.ERROR if problems else Severity.WARNING,
            "; ".join((problems + warnings)[:4]) + f" ({checked} samples decoded)",
            "the pipeline does not produce float [0, 1] images: uint8 or 0-255 float tensors "
            "are normalised as if they were [0, 1], so the input is ~255x too bright",
            "end the transform with transforms.v2.ToImage() and ToDtype(torch.float32, scale=True) "
            "(or divide by 255 once); do not normalise with mean/std yourself",
        )
    lo = min(s.min for s in samples)
    hi = max(s.max for s in samples)
    return ok(rule, f"{checked} samples decoded: float CHW in [{lo:.3g}, {hi:.3g}]")


def check_unreadable_images(arrays: TargetArrays) -> Verdict:
    """Missing or unreadable image files (from the header read, no full decode)."""
    rule = "unreadable_images"
    status = arrays.file_status
    if status is None or not np.any(status != FILE_UNCHECKED):
        return not_checked(rule, "image files not checked")
    missing = np.flatnonzero(status == FILE_MISSING)
    broken = np.flatnonzero(status == FILE_UNREADABLE)
    checked = int(np.sum(status != FILE_UNCHECKED))
    if missing.size == 0 and broken.size == 0:
        return ok(rule, f"{checked} image files found and readable")
    parts = []
    if missing.size:
        parts.append(f"{missing.size} missing: {examples(arrays, missing)} (e.g. {arrays.paths[int(missing[0])]})")
    if broken.size:
        first = int(broken[0])
        parts.append(f"{broken.size} unreadable: {examples(arrays, broken)} ({arrays.file_errors.get(first, '')})")
    return flagged(
        rule,
        Severity.ERROR,
        f"of {checked} image files, " + "; ".join(parts),
        "wrong image folder (data.train_images / data.val_images), files not copied, or corrupt files",
        "point data.*_images at the folder holding the files named in the annotations, or remove "
        "these images from the annotations",
        missing=int(missing.size),
        unreadable=int(broken.size),
        samples=offender_rows(arrays, np.concatenate([missing, broken])),
    )


def check_image_sizes(arrays: TargetArrays) -> Verdict:
    """Declared image sizes (COCO width/height) against the file headers."""
    rule = "image_size_mismatch"
    if arrays.header_sizes is None:
        return not_checked(rule, "image files not checked")
    hw = arrays.header_sizes
    declared = np.stack([arrays.widths, arrays.heights], axis=1)
    both = np.all(np.isfinite(hw), axis=1) & np.all(np.isfinite(declared), axis=1)
    differ = both & np.any(np.abs(hw - declared) > 0.5, axis=1)
    n = int(differ.sum())
    if n == 0:
        return ok(rule, f"{int(both.sum())} declared sizes match the files")
    swapped = differ & (np.abs(hw[:, 0] - declared[:, 1]) <= 0.5) & (np.abs(hw[:, 1] - declared[:, 0]) <= 0.5)
    first = int(np.flatnonzero(differ)[0])
    return flagged(
        rule,
        Severity.WARNING,
        f"{n} images differ from their declared size, e.g. {arrays.name(first)}: declared "
        f"{declared[first, 0]:g}x{declared[first, 1]:g}, file {hw[first, 0]:g}x{hw[first, 1]:g}"
        + (f"; {int(swapped.sum())} are width/height swapped (EXIF rotation?)" if swapped.any() else ""),
        "the images were resized or rotated after annotating, so the boxes no longer sit on the objects",
        "re-export the annotations for the current files (or the files for the annotations); "
        "strip EXIF orientation consistently",
        count=n,
        samples=offender_rows(arrays, np.flatnonzero(differ)),
    )


def check_duplicate_image_ids(arrays: TargetArrays) -> Verdict:
    """The same image id on two samples: COCO evaluation merges their ground truth."""
    rule = "duplicate_image_ids"
    if arrays.num_images == 0:
        return ok(rule, "no images")
    ids, counts = np.unique(arrays.image_ids, return_counts=True)
    dup = ids[counts > 1]
    listed = sorted({i for i, _ in arrays.duplicate_entries})
    if dup.size == 0 and not listed:
        return ok(rule, f"{arrays.num_images} unique image ids")
    parts = []
    if dup.size:
        rows = np.flatnonzero(np.isin(arrays.image_ids, dup))
        first_id = int(arrays.image_ids[rows[0]])
        same = np.flatnonzero(arrays.image_ids == first_id)
        parts.append(
            f"{dup.size} image ids used by more than one sample ({rows.size} samples), e.g. id "
            f"{first_id} by {examples(arrays, same)}"
        )
    if listed:
        first_id, name = arrays.duplicate_entries[0]
        row = np.flatnonzero(arrays.image_ids == first_id)
        other = f" and {arrays.name(int(row[0]))}" if row.size else ""
        parts.append(
            f"{len(arrays.duplicate_entries)} 'images' entries repeat an earlier id (only the first "
            f"is used), e.g. id {first_id}: {name}{other}"
        )
    dup = np.union1d(dup, np.asarray(listed, dtype=np.int64))
    return flagged(
        rule,
        Severity.ERROR,
        "; ".join(parts),
        "images listed twice in the annotation file, or ids reused when merging annotation files",
        "give every image a unique id (and point each annotation at the right one); drop repeated entries",
        ids=[int(v) for v in dup[:50]],
    )


def check_empty_images(arrays: TargetArrays, *, split: str = "train", majority: float = 0.5) -> Verdict:
    """Images without objects: valid (they teach background) but counted; flagged as info
    when they are most of the split, as an error when no image has an object at all."""
    rule = "empty_images"
    n = arrays.num_images
    empty = np.flatnonzero(arrays.box_counts == 0)
    k = int(empty.size)
    if n == 0:
        return flagged(rule, Severity.ERROR, f"the {split} split has no images", "an empty dataset",
                     "check data." + split)
    if k == 0:
        return ok(rule, f"every one of {n} images has objects")
    if k == n:
        return flagged(
            rule,
            Severity.ERROR,
            f"none of the {n} {split} images has an object",
            "annotations not loaded (wrong file, every category filtered out) or all crowd boxes",
            "check the annotation file and data.classes",
            count=k,
        )
    text = f"{k} of {n} images have no objects (valid: they train as background), e.g. {examples(arrays, empty)}"
    if k > majority * n:
        return flagged(
            rule,
            Severity.INFO,
            text,
            "most images are background-only",
            "fine if intended; otherwise check that their annotations were exported",
            count=k,
        )
    return ok(rule, text)
