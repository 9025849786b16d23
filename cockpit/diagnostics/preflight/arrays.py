"""One split's targets as flat numpy arrays (:class:`TargetArrays`), and how they are built.

Every check reads these arrays, never a dataset: a row per image, a row per box.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

LABEL_MISSING = np.iinfo(np.int64).min
"""Label placeholder for boxes whose labels array did not line up (reported as a shape problem)."""

BOX_SIZE_EDGES: tuple[float, ...] = (0.0, 16.0, 32.0, 64.0, 128.0, 256.0, math.inf)
BOX_SIZE_LABELS: tuple[str, ...] = ("<16", "16-32", "32-64", "64-128", "128-256", ">=256")
"""Box-size histogram bins: sqrt(area) in original image pixels."""

# File status codes of TargetArrays.file_status.
FILE_UNCHECKED, FILE_OK, FILE_MISSING, FILE_UNREADABLE = 0, 1, 2, 3

FLOAT_NAMES = frozenset({"float32", "float64", "float16", "bfloat16", "half", "float", "double"})
"""dtype names that count as float for boxes and images."""


@dataclass
class TargetArrays:
    """One split's targets as flat arrays: a row per image, a row per box.

    ``box_image`` maps each box to its image row. Widths/heights are NaN where unknown.
    """

    indices: np.ndarray
    image_ids: np.ndarray
    paths: list[str | None]
    widths: np.ndarray
    heights: np.ndarray
    box_counts: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    box_image: np.ndarray
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    """Target dtype/shape problems: ``(image row, kind, detail)``."""
    file_status: np.ndarray | None = None
    """Per image: FILE_UNCHECKED / FILE_OK / FILE_MISSING / FILE_UNREADABLE."""
    file_errors: dict[int, str] = field(default_factory=dict)
    header_sizes: np.ndarray | None = None
    """(I, 2) ``(width, height)`` read from the file headers (NaN when not read)."""
    category_names: list[str] | None = None
    """Category names the data itself declares (COCO ``categories``), when known."""
    dataset_classes: list[str] | None = None
    duplicate_entries: list[tuple[int, str]] = field(default_factory=list)
    """COCO ``images`` entries repeating an earlier id: ``(image id, file name)``."""

    @property
    def num_images(self) -> int:
        return int(self.indices.shape[0])

    @property
    def num_boxes(self) -> int:
        return int(self.boxes.shape[0])

    def name(self, row: int) -> str:
        """``file.png (#index)`` or ``#index``: how evidence names a sample."""
        path = self.paths[row] if row < len(self.paths) else None
        index = int(self.indices[row])
        return f"{os.path.basename(path)} (#{index})" if path else f"#{index}"

    def box_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-box image width and height (NaN where unknown)."""
        return self.widths[self.box_image], self.heights[self.box_image]

    @classmethod
    def from_targets(
        cls,
        targets: Sequence[dict[str, Any]],
        sizes: Sequence[tuple[float | None, float | None]] | None = None,
        *,
        paths: Sequence[str | None] | None = None,
        image_ids: Sequence[int] | None = None,
    ) -> "TargetArrays":
        """Build from in-memory targets (tests, module datasets); ``sizes`` are ``(w, h)``."""
        builder = TargetBuilder()
        for i, target in enumerate(targets):
            w, h = sizes[i] if sizes is not None else (None, None)
            path = paths[i] if paths is not None else None
            image_id = image_ids[i] if image_ids is not None else target.get("image_id", i)
            builder.add(i, image_id, path, w, h, target)
        return builder.build()


def dtype_name(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return type(value).__name__
    return str(dtype).replace("torch.", "")


def to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor: no torch import needed here
        return value.detach().cpu().numpy()
    return np.asarray(value)


class TargetBuilder:
    """Accumulates per-image rows and per-box arrays; ``build`` concatenates once."""

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.image_ids: list[int] = []
        self.paths: list[str | None] = []
        self.widths: list[float] = []
        self.heights: list[float] = []
        self.counts: list[int] = []
        self.boxes: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.problems: list[tuple[int, str, str]] = []

    def add(self, index: int, image_id: Any, path: str | None, width: Any, height: Any, target: dict | None,
            error: str | None = None) -> None:
        row = len(self.indices)
        self.indices.append(int(index))
        try:
            self.image_ids.append(int(image_id))
        except (TypeError, ValueError):
            self.image_ids.append(-1)
            self.problems.append((row, "image_id", f"image_id {image_id!r} is not an int"))
        self.paths.append(path)
        self.widths.append(float(width) if width else math.nan)
        self.heights.append(float(height) if height else math.nan)
        parsed = None
        if error is not None or target is None:
            self.problems.append((row, "target_error", error or "no target"))
        else:
            parsed = self._parse(row, target)
        if parsed is None:
            self.counts.append(0)
            return
        boxes, labels = parsed
        self.counts.append(boxes.shape[0])
        if boxes.shape[0]:
            self.boxes.append(boxes)
            self.labels.append(labels)

    def _parse(self, row: int, target: dict) -> tuple[np.ndarray, np.ndarray] | None:
        """``(N, 4)`` float64 boxes and ``(N,)`` int64 labels, noting every problem; None
        when nothing usable is left."""
        raw_boxes = target.get("boxes")
        raw_labels = target.get("labels")
        if raw_boxes is None or raw_labels is None:
            missing = [k for k in ("boxes", "labels") if target.get(k) is None]
            self.problems.append((row, "target_keys", f"target has no {' / '.join(missing)}"))
            return None
        try:
            boxes = to_numpy(raw_boxes)
            labels = to_numpy(raw_labels)
            if boxes.dtype.kind not in "fiub" or labels.dtype.kind not in "fiub":
                raise TypeError(f"boxes {boxes.dtype} / labels {labels.dtype} are not numeric")
        except (TypeError, ValueError) as exc:  # ragged lists, strings
            self.problems.append((row, "target_error", f"{type(exc).__name__}: {exc}"))
            return None
        # Only real arrays/tensors are judged on dtype: plain lists are typed by the adapter.
        if hasattr(raw_boxes, "dtype") and dtype_name(raw_boxes) not in FLOAT_NAMES:
            self.problems.append((row, "boxes_dtype", f"boxes {dtype_name(raw_boxes)}"))
        if hasattr(raw_labels, "dtype") and dtype_name(raw_labels) != "int64":
            self.problems.append((row, "labels_dtype", f"labels {dtype_name(raw_labels)}"))
        if boxes.ndim != 2 or (boxes.shape[-1] != 4):
            kind = "empty_shape" if boxes.size == 0 else "boxes_shape"
            self.problems.append((row, kind, str(tuple(boxes.shape))))
            if boxes.size % 4 != 0:
                return None
        boxes = boxes.reshape(-1, 4).astype(np.float64, copy=False)
        return boxes, self._labels(row, labels.reshape(-1), boxes.shape[0])

    def _labels(self, row: int, labels: np.ndarray, n: int) -> np.ndarray:
        """int64 labels, or LABEL_MISSING for each box when they do not line up or are not integers."""
        if labels.shape[0] != n:
            self.problems.append((row, "count_mismatch", f"{n} boxes but {labels.shape[0]} labels"))
            return np.full(n, LABEL_MISSING, dtype=np.int64)
        if labels.dtype.kind not in "iub":
            if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
                return labels.astype(np.int64)
            return np.full(n, LABEL_MISSING, dtype=np.int64)
        return labels.astype(np.int64, copy=False)

    def build(self) -> TargetArrays:
        counts = np.asarray(self.counts, dtype=np.int64)
        boxes = np.concatenate(self.boxes) if self.boxes else np.empty((0, 4))
        labels = np.concatenate(self.labels) if self.labels else np.empty(0, dtype=np.int64)
        return TargetArrays(
            indices=np.asarray(self.indices, dtype=np.int64),
            image_ids=np.asarray(self.image_ids, dtype=np.int64),
            paths=list(self.paths),
            widths=np.asarray(self.widths, dtype=np.float64),
            heights=np.asarray(self.heights, dtype=np.float64),
            box_counts=counts,
            boxes=boxes,
            labels=labels,
            box_image=np.repeat(np.arange(counts.shape[0]), counts),
            problems=list(self.problems),
        )
