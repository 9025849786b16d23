"""Report: both splits scanned, as ``preflight.json`` and for ``cockpit check``.

:func:`scan_arrays` runs every check over extracted arrays (pure); :func:`scan_split`
extracts first; :func:`run_preflight` builds each configured split and scans it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from cockpit.diagnostics.flags import CheckState, Verdict
from cockpit.diagnostics.preflight.anchors import AnchorSpec, anchor_spec
from cockpit.diagnostics.preflight.arrays import BOX_SIZE_EDGES, BOX_SIZE_LABELS, TargetArrays
from cockpit.diagnostics.preflight import checks_boxes as box_checks
from cockpit.diagnostics.preflight import checks_images as image_checks
from cockpit.diagnostics.preflight import checks_labels as label_checks
from cockpit.diagnostics.preflight.evidence import labels_known, valid_boxes
from cockpit.diagnostics.preflight.policy import apply_policy
from cockpit.diagnostics.preflight.extract import (
    ImageSample,
    extract_targets,
    fill_sizes_by_decoding,
    read_image_headers,
    sample_images,
    spread_indices,
)
from cockpit.diagnostics.preflight.sources import open_split
from cockpit.diagnostics.verdicts import flagged, jsonable, ok
from cockpit.progress import ProgressSink
from cockpit.engine.events import Severity


def class_histogram(arrays: TargetArrays, classes: Sequence[str]) -> dict[str, int]:
    """Boxes per class name (label order); invalid labels get their own ``label N`` keys."""
    out = {name: 0 for name in classes}
    known = labels_known(arrays)
    labels, counts = np.unique(arrays.labels[known], return_counts=True)
    for label, count in zip(labels.tolist(), counts.tolist()):
        if 1 <= label <= len(classes):
            out[classes[label - 1]] = int(count)
        elif label == 0:
            out["label 0 (background!)"] = int(count)
        else:
            out[f"label {label} (out of range)"] = int(count)
    return out


def box_size_histogram(arrays: TargetArrays) -> dict[str, int]:
    """Valid boxes per sqrt(area) bin, in original image pixels."""
    valid = valid_boxes(arrays)
    b = arrays.boxes[valid]
    side = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    counts, _ = np.histogram(side, bins=np.asarray(BOX_SIZE_EDGES))
    return {label: int(c) for label, c in zip(BOX_SIZE_LABELS, counts)}


@dataclass
class SplitScan:
    """One split's verdicts and statistics."""

    split: str
    verdicts: list[Verdict]
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def has_errors(self) -> bool:
        return any(v.flag is not None and v.flag.severity == Severity.ERROR for v in self.verdicts)


def scan_arrays(
    arrays: TargetArrays,
    *,
    split: str,
    num_classes: int,
    classes: Sequence[str],
    anchors: AnchorSpec,
    samples: Sequence[ImageSample] = (),
) -> SplitScan:
    """Every check over already-extracted arrays (pure: no I/O)."""
    verdicts = [
        box_checks.check_degenerate_boxes(arrays),
        box_checks.check_boxes_outside(arrays),
        box_checks.check_normalized_coords(arrays),
        box_checks.check_xywh_as_xyxy(arrays),
        label_checks.check_label_zero(arrays),
        label_checks.check_label_range(arrays, num_classes, classes),
        label_checks.check_class_mismatch(arrays, classes, split=split),
        label_checks.check_target_dtypes(arrays, samples),
        image_checks.check_image_range(samples),
        image_checks.check_unreadable_images(arrays),
        image_checks.check_image_sizes(arrays),
        image_checks.check_duplicate_image_ids(arrays),
        image_checks.check_empty_images(arrays, split=split),
        box_checks.check_anchor_coverage(arrays, anchors),
    ]
    summary = {
        "images": arrays.num_images,
        "boxes": arrays.num_boxes,
        "images_without_objects": int(np.sum(arrays.box_counts == 0)),
        "class_histogram": class_histogram(arrays, classes),
        "box_size_histogram": box_size_histogram(arrays),
        "samples_decoded": len(samples),
    }
    return SplitScan(split, verdicts, summary)


def scan_split(
    dataset: Any,
    *,
    split: str,
    num_classes: int,
    classes: Sequence[str],
    anchors: AnchorSpec,
    check_files: bool = True,
    decode_samples: int = 4,
    size_decode_limit: int = 200,
    progress: ProgressSink | None = None,
) -> SplitScan:
    """Extract ``dataset``'s targets (headers only), decode ``decode_samples`` samples
    through the pipeline, and run every check; ``progress`` hears the header reads."""
    started = time.perf_counter()
    arrays = extract_targets(dataset)
    if check_files:
        read_image_headers(arrays, progress, split)
    if size_decode_limit and np.any(~np.isfinite(arrays.widths)):
        fill_sizes_by_decoding(dataset, arrays, size_decode_limit)
    picks = spread_indices(arrays.num_images, decode_samples)
    names = {int(arrays.indices[r]): arrays.name(r) for r in picks}
    samples = sample_images(dataset, [int(arrays.indices[r]) for r in picks], names) if picks else []
    scan = scan_arrays(
        arrays,
        split=split,
        num_classes=num_classes,
        classes=classes,
        anchors=anchors,
        samples=samples,
    )
    scan.verdicts = apply_policy(scan.verdicts, dataset=dataset, arrays=arrays, samples=samples)
    scan.verdicts.insert(0, ok("dataset_load", f"{arrays.num_images} samples"))
    scan.seconds = time.perf_counter() - started
    return scan


def scan_dataset(dataset: Any, **kwargs: Any) -> list[Verdict]:
    """:func:`scan_split`'s verdicts (same keyword arguments)."""
    return scan_split(dataset, **kwargs).verdicts


def verdict_dict(verdict: Verdict, split: str | None) -> dict[str, Any]:
    """A verdict as a preflight.json entry."""
    flag = verdict.flag
    return {
        "rule": verdict.rule,
        "title": verdict.title,
        "state": verdict.state.value,
        "severity": flag.severity.value if flag else None,
        "evidence": verdict.evidence,
        "likely_cause": flag.likely_cause if flag else "",
        "fix": flag.fix if flag else "",
        "split": split,
        "data": jsonable(flag.data) if flag else {},
    }


@dataclass
class PreflightReport:
    """Both splits' verdicts and statistics; ``to_dict()`` is ``preflight.json``."""

    splits: dict[str, SplitScan] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    """Resize and anchors the coverage check assumed."""
    seconds: float = 0.0

    def verdicts(self) -> list[tuple[str, Verdict]]:
        return [(name, v) for name, scan in self.splits.items() for v in scan.verdicts]

    def flagged(self) -> list[tuple[str, Verdict]]:
        return [(s, v) for s, v in self.verdicts() if v.state == CheckState.FLAGGED]

    @property
    def has_errors(self) -> bool:
        return any(scan.has_errors for scan in self.splits.values())

    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "info": 0}
        for _, v in self.flagged():
            out[v.flag.severity.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        totals = {"images": 0, "boxes": 0, "images_without_objects": 0}
        for scan in self.splits.values():
            for key in totals:
                totals[key] += int(scan.summary.get(key, 0))
        return jsonable({
            "splits": {
                name: dict(scan.summary, seconds=round(scan.seconds, 3)) for name, scan in self.splits.items()
            },
            "verdicts": [verdict_dict(v, s) for s, v in self.verdicts()],
            "summary": dict(totals, **self.counts(), has_errors=self.has_errors, seconds=round(self.seconds, 3)),
            "model": self.model,
        })


def _load_failure(split: str, error: BaseException) -> SplitScan:
    verdict = flagged(
        "dataset_load",
        Severity.ERROR,
        f"the {split} split could not be opened: {error}",
        "a wrong path, format or class list in the config's [data] section",
        f"fix data.{split} (and data.format / data.classes) so the dataset opens",
    )
    return SplitScan(split, [verdict], {"images": 0, "boxes": 0, "images_without_objects": 0,
                                        "class_histogram": {}, "box_size_histogram": {}})


def run_preflight(
    config: Any,
    *,
    splits: Sequence[str] = ("train", "val"),
    check_files: bool = True,
    decode_samples: int = 4,
    progress: ProgressSink | None = None,
    on_split: Callable[[SplitScan], None] | None = None,
) -> PreflightReport:
    """Open each configured split (:func:`.sources.open_split`: for ``coco`` without
    torch) and scan it; ``progress`` hears how far each long step has come, ``on_split``
    gets each split's scan as soon as it is done (the cockpit's checklist fills in).

    A split whose dataset cannot be opened becomes a ``dataset_load`` error verdict
    (the other split is still scanned); an unset ``data.val`` is skipped.

    The work runs in a short-lived thread and the caller waits for it. Decoding samples
    runs torch ops, and libgomp (torch's OpenMP on Linux) keeps a thread team for every
    native thread that ever ran a parallel region. ``cockpit run`` checks on the main
    thread and then trains on the trainer thread: two teams on a 2-core machine make
    libgomp see more threads than cores and fall back to throttled waiting at every
    barrier, which cost ~25% of the tiny model's training throughput for the whole run
    (BENCHMARKS.md). A team dies with its thread, so the check leaves none behind.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["report"] = _run_preflight(
                config, splits=splits, check_files=check_files, decode_samples=decode_samples, progress=progress,
                on_split=on_split,
            )
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=work, name="cockpit-preflight", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]


def _run_preflight(
    config: Any, *, splits: Sequence[str], check_files: bool, decode_samples: int, progress: ProgressSink | None,
    on_split: Callable[[SplitScan], None] | None = None,
) -> PreflightReport:
    started = time.perf_counter()
    spec = anchor_spec(config)
    report = PreflightReport(
        model={
            "arch": getattr(config.model, "arch", None),
            "min_size": spec.min_size,
            "max_size": spec.max_size,
            "anchor_sizes": list(spec.sizes),
            "aspect_ratios": list(spec.aspect_ratios),
        }
    )
    classes = list(config.data.classes)
    for split in splits:
        if split != "train" and not getattr(config.data, split, ""):
            continue
        try:
            dataset = open_split(config, split, progress)
        except Exception as exc:  # DatasetError above all, but a user module may raise anything
            report.splits[split] = _load_failure(split, exc)
        else:
            report.splits[split] = scan_split(
                dataset,
                split=split,
                num_classes=config.data.num_classes,
                classes=classes,
                anchors=spec,
                check_files=check_files,
                decode_samples=decode_samples,
                progress=progress,
            )
        if on_split is not None:
            on_split(report.splits[split])
    report.seconds = time.perf_counter() - started
    return report
