"""Pre-flight dataset check: every train and val target scanned once before training.

Three layers, so each check is a pure, separately tested function:

1. **Extraction** (:func:`extract_targets`, :func:`read_image_headers`,
   :func:`sample_images`) -- the only I/O. Targets come from ``raw_target`` and sizes from
   ``sample_info`` (COCO: the JSON), never from decoding an image; files are opened for
   their header only; a handful of samples are decoded through the real pipeline to see
   what the model will get. Everything lands in one :class:`TargetArrays` of flat numpy
   arrays (one row per image, one row per box).
2. **Checks** (``check_*``) -- pure functions from :class:`TargetArrays` (plus the model's
   resize and anchors) to a :class:`Verdict`, vectorised over all boxes, so 100,000 boxes
   take milliseconds. Evidence names the first offenders (file name and sample index) and
   a count; the fix says what to change.
3. **Report** (:class:`PreflightReport`, :func:`run_preflight`, :func:`format_table`) --
   verdicts and summaries of both splits, written to ``<run_dir>/preflight.json`` and
   printed by ``cockpit check``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from cockpit.diagnostics.catalog import RULES_BY_ID
from cockpit.diagnostics.flags import CheckState, Flag, Verdict
from cockpit.engine.events import Severity

LABEL_MISSING = np.iinfo(np.int64).min
"""Label placeholder for boxes whose labels array did not line up (reported as a shape problem)."""

RPN_FG_IOU = 0.7
"""torchvision's ``rpn_fg_iou_thresh``: an anchor needs this IoU with a box to be foreground."""

BOX_SIZE_EDGES: tuple[float, ...] = (0.0, 16.0, 32.0, 64.0, 128.0, 256.0, math.inf)
BOX_SIZE_LABELS: tuple[str, ...] = ("<16", "16-32", "32-64", "64-128", "128-256", ">=256")
"""Box-size histogram bins: sqrt(area) in original image pixels."""

# File status codes of TargetArrays.file_status.
FILE_UNCHECKED, FILE_OK, FILE_MISSING, FILE_UNREADABLE = 0, 1, 2, 3


# =============================================================================== anchors


@dataclass(frozen=True)
class AnchorSpec:
    """How the model resizes images and which anchors its RPN uses."""

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


# ============================================================================ extraction


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
        builder = _Builder()
        for i, target in enumerate(targets):
            w, h = sizes[i] if sizes is not None else (None, None)
            path = paths[i] if paths is not None else None
            image_id = image_ids[i] if image_ids is not None else target.get("image_id", i)
            builder.add(i, image_id, path, w, h, target)
        return builder.build()


def _dtype_name(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return type(value).__name__
    return str(dtype).replace("torch.", "")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor: no torch import needed here
        return value.detach().cpu().numpy()
    return np.asarray(value)


_FLOAT_NAMES = {"float32", "float64", "float16", "bfloat16", "half", "float", "double"}


class _Builder:
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
        if error is not None or target is None:
            self.counts.append(0)
            self.problems.append((row, "target_error", error or "no target"))
            return
        raw_boxes = target.get("boxes")
        raw_labels = target.get("labels")
        if raw_boxes is None or raw_labels is None:
            self.counts.append(0)
            missing = [k for k in ("boxes", "labels") if target.get(k) is None]
            self.problems.append((row, "target_keys", f"target has no {' / '.join(missing)}"))
            return
        try:
            boxes = _to_numpy(raw_boxes)
            labels = _to_numpy(raw_labels)
            if boxes.dtype.kind not in "fiub" or labels.dtype.kind not in "fiub":
                raise TypeError(f"boxes {boxes.dtype} / labels {labels.dtype} are not numeric")
        except (TypeError, ValueError) as exc:  # ragged lists, strings
            self.counts.append(0)
            self.problems.append((row, "target_error", f"{type(exc).__name__}: {exc}"))
            return
        # Only real arrays/tensors are judged on dtype: plain lists are typed by the adapter.
        if hasattr(raw_boxes, "dtype") and _dtype_name(raw_boxes) not in _FLOAT_NAMES:
            self.problems.append((row, "boxes_dtype", f"boxes {_dtype_name(raw_boxes)}"))
        if hasattr(raw_labels, "dtype") and _dtype_name(raw_labels) != "int64":
            self.problems.append((row, "labels_dtype", f"labels {_dtype_name(raw_labels)}"))
        if boxes.ndim != 2 or (boxes.shape[-1] != 4):
            if boxes.size == 0:
                self.problems.append((row, "empty_shape", str(tuple(boxes.shape))))
            else:
                self.problems.append((row, "boxes_shape", str(tuple(boxes.shape))))
            if boxes.size % 4 != 0:
                self.counts.append(0)
                return
        boxes = boxes.reshape(-1, 4).astype(np.float64, copy=False)
        labels = labels.reshape(-1)
        n = boxes.shape[0]
        if labels.shape[0] != n:
            self.problems.append((row, "count_mismatch", f"{n} boxes but {labels.shape[0]} labels"))
            labels = np.full(n, LABEL_MISSING, dtype=np.int64)
        elif labels.dtype.kind not in "iub":
            if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
                labels = labels.astype(np.int64)
            else:
                labels = np.full(n, LABEL_MISSING, dtype=np.int64)
        self.counts.append(n)
        if n:
            self.boxes.append(boxes)
            self.labels.append(labels.astype(np.int64, copy=False))

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


def _category_names(dataset: Any) -> list[str] | None:
    """Category names the data declares (COCO ``categories``), found duck-typed."""
    names = getattr(dataset, "category_names", None)
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    coco = getattr(dataset, "coco", None)
    cats = getattr(coco, "cats", None)
    if isinstance(cats, dict):
        return [str(c.get("name")) for c in cats.values() if isinstance(c, dict)]
    return None


def arrays_from_coco(
    data: dict[str, Any],
    *,
    category_to_label: dict[int, int],
    images_dir: str | os.PathLike | None = None,
    ids: Sequence[int] | None = None,
) -> TargetArrays:
    """A COCO annotation dict straight to arrays, as the ``coco`` adapter builds targets:
    rows in ``ids`` order (default: sorted image ids), crowd annotations left out, ``bbox``
    ``[x, y, w, h]`` turned into ``[x1, y1, x2, y2]``, categories mapped to labels.

    Vectorised, so a 10,000-image / 100,000-box file takes well under a second; the
    per-sample ``raw_target`` path builds several tensors per image and is ~10x slower.
    Repeated ``images`` entries (which pycocotools silently merges) are kept in
    ``duplicate_entries`` for the duplicate-id check.
    """
    images = list(data.get("images") or [])
    by_id: dict[int, dict[str, Any]] = {}
    duplicates: list[tuple[int, str]] = []
    for im in images:
        if im["id"] in by_id:
            duplicates.append((int(im["id"]), str(im.get("file_name", ""))))
        else:
            by_id[im["id"]] = im
    ids = list(ids) if ids is not None else sorted(by_id)
    n = len(ids)
    row_of = {image_id: row for row, image_id in enumerate(ids)}
    base = os.fspath(images_dir) if images_dir is not None else None
    paths: list[str | None] = []
    widths = np.full(n, np.nan)
    heights = np.full(n, np.nan)
    for row, image_id in enumerate(ids):
        im = by_id.get(image_id, {})
        name = im.get("file_name")
        paths.append(os.path.join(base, name) if (base is not None and name) else name)
        if im.get("width"):
            widths[row] = float(im["width"])
        if im.get("height"):
            heights[row] = float(im["height"])
    problems: list[tuple[int, str, str]] = []
    anns = [a for a in (data.get("annotations") or []) if not a.get("iscrowd", 0)]
    rows = np.fromiter((row_of.get(a.get("image_id"), -1) for a in anns), dtype=np.int64, count=len(anns))
    try:
        bbox = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4)
    except (KeyError, TypeError, ValueError):  # a missing or malformed bbox somewhere: go one by one
        bbox = np.full((len(anns), 4), np.nan)
        for i, a in enumerate(anns):
            try:
                bbox[i] = np.asarray(a["bbox"], dtype=np.float64).reshape(4)
            except (KeyError, TypeError, ValueError):
                if rows[i] >= 0:
                    problems.append((int(rows[i]), "boxes_shape", f"bbox {a.get('bbox')!r}"))
    labels = np.fromiter(
        (category_to_label.get(a.get("category_id"), LABEL_MISSING) for a in anns), dtype=np.int64, count=len(anns)
    )
    keep = rows >= 0
    rows, bbox, labels = rows[keep], bbox[keep], labels[keep]
    order = np.argsort(rows, kind="stable")
    rows, bbox, labels = rows[order], bbox[order], labels[order]
    boxes = np.concatenate([bbox[:, :2], bbox[:, :2] + bbox[:, 2:]], axis=1)
    counts = np.bincount(rows, minlength=n).astype(np.int64)
    cats = data.get("categories") or []
    return TargetArrays(
        indices=np.arange(n, dtype=np.int64),
        image_ids=np.asarray(ids, dtype=np.int64),
        paths=paths,
        widths=widths,
        heights=heights,
        box_counts=counts,
        boxes=boxes,
        labels=labels,
        box_image=rows,
        problems=problems,
        category_names=[str(c.get("name")) for c in cats],
        duplicate_entries=duplicates,
    )


def _coco_fast_path(dataset: Any) -> TargetArrays | None:
    """The ``coco`` adapter's arrays without a ``raw_target`` call per image, when it
    exposes what :func:`arrays_from_coco` needs (``coco``, ``category_to_label``, ``ids``)."""
    coco = getattr(dataset, "coco", None)
    data = getattr(coco, "dataset", None)
    mapping = getattr(dataset, "category_to_label", None)
    ids = getattr(dataset, "ids", None)
    if not isinstance(data, dict) or not isinstance(mapping, dict) or ids is None:
        return None
    try:
        return arrays_from_coco(data, category_to_label=mapping, images_dir=getattr(dataset, "images_dir", None), ids=ids)
    except Exception:  # an unexpected JSON shape: the generic path reports it sample by sample
        return None


def extract_targets(dataset: Any) -> TargetArrays:
    """Every sample's raw target and header facts, without decoding an image.

    An adapter may offer ``preflight_arrays() -> TargetArrays`` as a faster path; the
    ``coco`` adapter is read straight from its JSON (:func:`arrays_from_coco`).
    Exceptions from ``raw_target`` are recorded as target problems, not raised.
    """
    fast = getattr(dataset, "preflight_arrays", None)
    arrays = fast() if callable(fast) else _coco_fast_path(dataset)
    if arrays is None:
        builder = _Builder()
        info_fn = getattr(dataset, "sample_info", None)
        for i in range(len(dataset)):
            path = width = height = None
            image_id: Any = i
            try:
                if info_fn is not None:
                    info = info_fn(i)
                    path, width, height, image_id = info.path, info.width, info.height, info.image_id
            except Exception as exc:  # a broken header entry is a finding, not a crash
                builder.add(i, i, None, None, None, None, error=f"sample_info: {type(exc).__name__}: {exc}")
                continue
            try:
                target = dataset.raw_target(i)
            except Exception as exc:
                builder.add(i, image_id, path, width, height, None, error=f"{type(exc).__name__}: {exc}")
                continue
            builder.add(i, image_id, path, width, height, target)
        arrays = builder.build()
    if arrays.category_names is None:
        arrays.category_names = _category_names(dataset)
    if arrays.dataset_classes is None and isinstance(getattr(dataset, "classes", None), (list, tuple)):
        arrays.dataset_classes = [str(c) for c in dataset.classes]
    return arrays


def read_image_headers(arrays: TargetArrays) -> None:
    """Open every image file for its header only (PIL reads a few bytes, no decode);
    fills ``file_status``, ``file_errors``, ``header_sizes`` and unknown widths/heights."""
    from PIL import Image

    n = arrays.num_images
    status = np.zeros(n, dtype=np.int8)
    sizes = np.full((n, 2), np.nan)
    errors: dict[int, str] = {}
    for row, path in enumerate(arrays.paths):
        if not path:
            continue
        try:
            with Image.open(path) as im:
                sizes[row] = im.size
            status[row] = FILE_OK
        except FileNotFoundError:
            status[row] = FILE_MISSING
            errors[row] = "missing"
        except Exception as exc:  # PIL.UnidentifiedImageError, truncated header, permission
            status[row] = FILE_UNREADABLE
            errors[row] = f"{type(exc).__name__}: {exc}"
    arrays.file_status = status
    arrays.file_errors = errors
    arrays.header_sizes = sizes
    unknown = ~np.isfinite(arrays.widths) | ~np.isfinite(arrays.heights)
    arrays.widths = np.where(unknown, sizes[:, 0], arrays.widths)
    arrays.heights = np.where(unknown, sizes[:, 1], arrays.heights)


def fill_sizes_by_decoding(dataset: Any, arrays: TargetArrays, limit: int = 200) -> int:
    """For samples with neither a declared size nor a readable file (in-memory module
    datasets), decode up to ``limit`` images to learn their size; returns how many."""
    unknown = np.flatnonzero(~np.isfinite(arrays.widths) | ~np.isfinite(arrays.heights))
    done = 0
    for row in unknown[:limit]:
        try:
            image = dataset.load_image(int(arrays.indices[row]))
        except Exception:
            continue
        size = getattr(image, "size", None)
        if callable(size) or size is None or not isinstance(size, tuple):
            shape = getattr(image, "shape", None)
            if shape is None or len(shape) < 2:
                continue
            h, w = (shape[-2], shape[-1]) if len(shape) == 3 and shape[0] in (1, 3, 4) else (shape[0], shape[1])
        else:
            w, h = size
        arrays.widths[row], arrays.heights[row] = float(w), float(h)
        done += 1
    return done


@dataclass(frozen=True)
class ImageSample:
    """What the model will receive for one sample after the full pipeline."""

    index: int
    name: str
    kind: str
    """``tensor``, ``ndarray``, ``PIL`` or the type name."""
    dtype: str
    shape: tuple[int, ...]
    min: float = math.nan
    max: float = math.nan
    error: str | None = None
    target_problems: tuple[str, ...] = ()


def sample_images(dataset: Any, indices: Iterable[int], names: dict[int, str] | None = None) -> list[ImageSample]:
    """Decode ``dataset[i]`` for a few ``indices`` and record image dtype/shape/range."""
    out = []
    for i in indices:
        name = (names or {}).get(int(i), f"#{int(i)}")
        try:
            image, target = dataset[int(i)]
        except Exception as exc:
            out.append(ImageSample(int(i), name, "error", "", (), error=f"{type(exc).__name__}: {exc}"))
            continue
        if hasattr(image, "detach"):
            kind = "tensor"
        elif isinstance(image, np.ndarray):
            kind = "ndarray"
        elif type(image).__module__.startswith("PIL"):
            kind = "PIL"
        else:
            kind = type(image).__name__
        problems = []
        if isinstance(target, dict):
            b, l = target.get("boxes"), target.get("labels")
            if b is not None and _dtype_name(b) not in _FLOAT_NAMES:
                problems.append(f"boxes {_dtype_name(b)} after the transform")
            if b is not None and hasattr(b, "shape") and (len(b.shape) != 2 or b.shape[-1] != 4):
                problems.append(f"boxes shape {tuple(b.shape)} after the transform")
            if l is not None and _dtype_name(l) != "int64":
                problems.append(f"labels {_dtype_name(l)} after the transform")
        if kind in ("tensor", "ndarray"):
            arr = _to_numpy(image)
            lo = float(arr.min()) if arr.size else math.nan
            hi = float(arr.max()) if arr.size else math.nan
            out.append(ImageSample(int(i), name, kind, _dtype_name(image), tuple(int(s) for s in arr.shape), lo, hi,
                                   target_problems=tuple(problems)))
        else:
            out.append(ImageSample(int(i), name, kind, getattr(image, "mode", ""), (), target_problems=tuple(problems)))
    return out


def spread_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread over ``range(n)`` (first, last and evenly between)."""
    if n <= 0 or k <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, num=min(k, n))})


# ================================================================================ checks


def _title(rule: str) -> str:
    return RULES_BY_ID[rule].title


def _flag(rule: str, severity: Severity, evidence: str, cause: str, fix: str, **data: Any) -> Verdict:
    return Verdict.flagged(Flag(rule, _title(rule), severity, evidence, cause, fix, _jsonable(data)))


def _ok(rule: str, evidence: str = "") -> Verdict:
    return Verdict.ok(rule, _title(rule), evidence)


def _skip(rule: str, evidence: str = "") -> Verdict:
    return Verdict.not_checked(rule, _title(rule), evidence)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _examples(arrays: TargetArrays, rows: np.ndarray, limit: int = 3) -> str:
    """``a.png (#0), b.png (#4) and 12 more`` from image rows (repeats allowed, order kept)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return ""
    uniq, first = np.unique(rows, return_index=True)
    ordered = uniq[np.argsort(first)]
    text = ", ".join(arrays.name(int(r)) for r in ordered[:limit])
    if ordered.size > limit:
        text += f" and {ordered.size - limit} more"
    return text


def _offender_rows(arrays: TargetArrays, rows: np.ndarray, limit: int = 20) -> list[int]:
    uniq = np.unique(np.asarray(rows, dtype=np.int64))
    return [int(arrays.indices[r]) for r in uniq[:limit]]


def _box_text(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box.tolist()) + "]"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _finite_boxes(arrays: TargetArrays) -> np.ndarray:
    return np.all(np.isfinite(arrays.boxes), axis=1)


def _valid_boxes(arrays: TargetArrays) -> np.ndarray:
    b = arrays.boxes
    return _finite_boxes(arrays) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])


def check_degenerate_boxes(arrays: TargetArrays) -> Verdict:
    """x2 <= x1 or y2 <= y1 (or a NaN/Inf coordinate): torchvision raises on these mid-epoch."""
    rule = "degenerate_boxes"
    if arrays.num_boxes == 0:
        return _ok(rule, "no boxes")
    bad = ~_valid_boxes(arrays)
    n = int(bad.sum())
    if n == 0:
        return _ok(rule, f"all {arrays.num_boxes} boxes have x2 > x1 and y2 > y1")
    rows = arrays.box_image[bad]
    first = int(np.flatnonzero(bad)[0])
    return _flag(
        rule,
        Severity.ERROR,
        f"{n} of {arrays.num_boxes} boxes in {_plural(np.unique(rows).size, 'image')} have x2 <= x1 or "
        f"y2 <= y1, e.g. {_box_text(arrays.boxes[first])} in {arrays.name(int(arrays.box_image[first]))}; "
        f"offenders: {_examples(arrays, rows)}",
        "zero-size or inverted boxes (an annotation slip, or boxes not in x1, y1, x2, y2 order); "
        "torchvision stops training with 'All bounding boxes should have positive height and width'",
        "fix or drop these boxes (keep only x2 > x1 and y2 > y1); if most are bad, check the box "
        "format (xyxy pixels expected)",
        count=n,
        samples=_offender_rows(arrays, rows),
    )


def check_boxes_outside(arrays: TargetArrays, tolerance: float = 1.0) -> Verdict:
    """Boxes beyond the image: partly (clipping to the image keeps a box) or entirely
    (clipping leaves nothing -- the box is wrong, e.g. another image's or a wrong scale)."""
    rule = "boxes_outside_image"
    w, h = arrays.box_sizes()
    known = np.isfinite(w) & np.isfinite(h)
    use = _valid_boxes(arrays) & known
    if not use.any():
        return _skip(rule, "no boxes with known image size") if arrays.num_boxes else _ok(rule, "no boxes")
    b = arrays.boxes
    tol = tolerance
    partly = use & ((b[:, 0] < -tol) | (b[:, 1] < -tol) | (b[:, 2] > w + tol) | (b[:, 3] > h + tol))
    entirely = use & ((b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= w) | (b[:, 1] >= h))
    partly &= ~entirely
    n_part, n_out = int(partly.sum()), int(entirely.sum())
    if n_part == 0 and n_out == 0:
        return _ok(rule, f"all {int(use.sum())} boxes inside their images")
    parts = []
    if n_out:
        i = int(np.flatnonzero(entirely)[0])
        r = int(arrays.box_image[i])
        parts.append(
            f"{n_out} entirely outside (clipping would leave an empty box), e.g. {_box_text(b[i])} on "
            f"{arrays.name(r)} ({w[i]:g}x{h[i]:g})"
        )
    if n_part:
        i = int(np.flatnonzero(partly)[0])
        r = int(arrays.box_image[i])
        parts.append(
            f"{n_part} partly outside (clipping to the image keeps them), e.g. {_box_text(b[i])} on "
            f"{arrays.name(r)} ({w[i]:g}x{h[i]:g})"
        )
    rows = arrays.box_image[partly | entirely]
    return _flag(
        rule,
        Severity.ERROR if n_out else Severity.WARNING,
        "; ".join(parts) + f"; offenders: {_examples(arrays, rows)}",
        "boxes annotated on a different image size (resized or EXIF-rotated images), or a box "
        "format other than xyxy pixels" if n_out else "annotations that run over the image border",
        "clip boxes to [0, width] x [0, height] (torchvision.ops.clip_boxes_to_image) and drop "
        "the ones left empty; check that the annotated image sizes match the files",
        partly=n_part,
        entirely=n_out,
        samples=_offender_rows(arrays, rows),
    )


def check_normalized_coords(arrays: TargetArrays, min_image_side: float = 16.0) -> Verdict:
    """Images whose boxes all lie within [0, 1] although the image is much larger:
    normalized coordinates that the model will read as pixels (boxes in the corner)."""
    rule = "normalized_coords"
    if arrays.num_boxes == 0:
        return _ok(rule, "no boxes")
    b = arrays.boxes
    eps = 1e-6
    unit = _finite_boxes(arrays) & np.all((b >= -eps) & (b <= 1.0 + eps), axis=1)
    per_image = np.bincount(arrays.box_image, weights=unit.astype(np.float64), minlength=arrays.num_images)
    side = np.minimum(arrays.widths, arrays.heights)
    big = ~(side < min_image_side)  # unknown sizes count: a [0, 1] box is at most one pixel anyway
    norm_images = (arrays.box_counts > 0) & (per_image == arrays.box_counts) & big
    n_img = int(norm_images.sum())
    if n_img == 0:
        return _ok(rule, "no image has all its boxes within [0, 1]")
    boxes_in = int(arrays.box_counts[norm_images].sum())
    rows = np.flatnonzero(norm_images)
    first = int(rows[0])
    i = int(np.flatnonzero(arrays.box_image == first)[0])
    size = f" on a {arrays.widths[first]:g}x{arrays.heights[first]:g} image" if np.isfinite(side[first]) else ""
    return _flag(
        rule,
        Severity.ERROR if boxes_in * 2 >= arrays.num_boxes else Severity.WARNING,
        f"{n_img} of {arrays.num_images} images ({boxes_in} boxes) have every box within [0, 1], e.g. "
        f"{_box_text(b[i])}{size} in {arrays.name(first)}; offenders: {_examples(arrays, rows)}",
        "normalized coordinates (0-1) given where pixels are expected: the model learns boxes "
        "crowded in the top-left corner",
        "multiply x by the image width and y by the height (xyxy pixels); YOLO-style "
        "(cx, cy, w, h) normalized labels also need converting to corners",
        images=n_img,
        boxes=boxes_in,
        samples=_offender_rows(arrays, rows),
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
    use = _finite_boxes(arrays) & known
    n = int(use.sum())
    if n == 0:
        return _skip(rule, "no boxes with known image size") if arrays.num_boxes else _ok(rule, "no boxes")
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
        return _flag(
            rule,
            Severity.ERROR,
            f"{n_exp} of {n} boxes are invalid as (x1, y1, x2, y2) but fit the image as (x, y, w, h), "
            f"e.g. {_box_text(b[i])} in {arrays.name(int(arrays.box_image[i]))} ({w[i]:g}x{h[i]:g}); "
            f"offenders: {_examples(arrays, rows)}",
            "boxes given as (x, y, width, height) -- COCO's bbox format -- where torchvision wants "
            "corners (x1, y1, x2, y2)",
            "convert: x2 = x + w, y2 = y + h (torchvision.ops.box_convert(boxes, 'xywh', 'xyxy'))",
            count=n_exp,
            samples=_offender_rows(arrays, rows),
        )
    return _ok(rule, f"{n_exp} of {n} boxes would only make sense as xywh")


def _labels_known(arrays: TargetArrays) -> np.ndarray:
    return arrays.labels != LABEL_MISSING


def check_label_zero(arrays: TargetArrays) -> Verdict:
    """Label 0 on an object: torchvision treats it as background, so it is never learned."""
    rule = "label_zero"
    zero = _labels_known(arrays) & (arrays.labels == 0)
    n = int(zero.sum())
    if n == 0:
        return _ok(rule, f"no box labelled 0 ({arrays.num_boxes} boxes)")
    rows = arrays.box_image[zero]
    everything = n == int(_labels_known(arrays).sum())
    return _flag(
        rule,
        Severity.ERROR,
        f"{n} of {arrays.num_boxes} boxes in {_plural(np.unique(rows).size, 'image')} have label 0"
        + (" (every box)" if everything else "")
        + f"; offenders: {_examples(arrays, rows)}",
        "0-based class ids: label 0 is background in torchvision, so these objects teach the model "
        "that they are background" + (" -- nothing is left to detect" if everything else ""),
        "0 is background; your first class must be 1: use label = class index + 1 (data.classes "
        "lists classes 1..K in order)",
        count=n,
        samples=_offender_rows(arrays, rows),
    )


def check_label_range(arrays: TargetArrays, num_classes: int, classes: Sequence[str] = ()) -> Verdict:
    """Labels >= num_classes (or negative): cross-entropy fails or reads another class."""
    rule = "label_out_of_range"
    known = _labels_known(arrays)
    bad = known & ((arrays.labels >= num_classes) | (arrays.labels < 0))
    n = int(bad.sum())
    k = num_classes - 1
    if n == 0:
        return _ok(rule, f"every label within 0..{k} (num_classes = {num_classes})")
    rows = arrays.box_image[bad]
    values = np.unique(arrays.labels[bad])
    shown = ", ".join(str(int(v)) for v in values[:8]) + (" ..." if values.size > 8 else "")
    names = f" ({', '.join(classes)})" if classes else ""
    return _flag(
        rule,
        Severity.ERROR,
        f"{n} boxes in {_plural(np.unique(rows).size, 'image')} have labels {shown} but num_classes = "
        f"{num_classes} (background + {k} classes{names}), so labels must be 1..{k}; offenders: "
        f"{_examples(arrays, rows)}",
        "data.classes lists fewer classes than the data uses, or labels are category ids "
        "rather than 1..K indices",
        f"list every class in data.classes (label i is classes[i-1]; the largest label here is "
        f"{int(values.max())}) or remap the labels to 1..{k}",
        count=n,
        labels=[int(v) for v in values[:50]],
        samples=_offender_rows(arrays, rows),
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
    known = _labels_known(arrays) & (arrays.labels >= 1) & (arrays.labels <= len(classes))
    unused: list[str] = []
    if known.any():
        counts = np.bincount(arrays.labels[known], minlength=len(classes) + 1)
        unused = [classes[i - 1] for i in range(1, len(classes) + 1) if counts[i] == 0]
        if unused:
            problems.append(f"classes with no box in {split}: {', '.join(unused)}")
            if split == "train" and severity != Severity.ERROR:
                severity = Severity.WARNING
    if not problems:
        return _ok(rule, f"{len(classes)} classes, each with boxes in {split}")
    return _flag(
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
        return _ok(rule, f"{arrays.num_images} targets: float (N, 4) boxes, int64 labels")
    parts, fixes = [], []
    for kind, items in by_kind.items():
        rows = [r for r, _ in items if r >= 0]
        details = sorted({d for _, d in items})
        where = _examples(arrays, np.asarray(rows)) if rows else ", ".join(f"#{-1 - r}" for r, _ in items[:3])
        parts.append(f"{kind.replace('_', ' ')} in {len(items)} target(s) ({'; '.join(details[:3])}): {where}")
        fixes.append(_DTYPE_FIXES.get(kind, kind))
    return _flag(
        rule,
        Severity.ERROR,
        "; ".join(parts),
        "targets built from Python lists / numpy without explicit dtypes, or an empty box list "
        "turned into a (0,) tensor",
        "; ".join(fixes),
        kinds=sorted(by_kind),
    )


def check_image_range(samples: Sequence[ImageSample]) -> Verdict:
    """Decoded samples must be float CHW tensors in [0, 1]: the model normalises itself
    with ImageNet mean/std, expecting [0, 1] input."""
    rule = "image_range"
    if not samples:
        return _skip(rule, "no sample decoded")
    errors, problems, warnings = [], [], []
    for s in samples:
        if s.error:
            errors.append(f"{s.name}: {s.error}")
            continue
        if s.kind != "tensor":
            problems.append(f"{s.name} is a {s.kind} {s.dtype}, not a tensor (add transforms.v2.ToImage())")
            continue
        if s.dtype not in _FLOAT_NAMES:
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
        return _flag(
            rule,
            Severity.ERROR,
            f"{len(errors)} of {checked} samples failed to load through the pipeline: " + "; ".join(errors[:3]),
            "the image cannot be decoded or the transform fails on it",
            "open the named files; check the dataset's __getitem__ and transforms on those indices",
        )
    if problems or warnings:
        return _flag(
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
    return _ok(rule, f"{checked} samples decoded: float CHW in [{lo:.3g}, {hi:.3g}]")


def check_unreadable_images(arrays: TargetArrays) -> Verdict:
    """Missing or unreadable image files (from the header read, no full decode)."""
    rule = "unreadable_images"
    status = arrays.file_status
    if status is None or not np.any(status != FILE_UNCHECKED):
        return _skip(rule, "image files not checked")
    missing = np.flatnonzero(status == FILE_MISSING)
    broken = np.flatnonzero(status == FILE_UNREADABLE)
    checked = int(np.sum(status != FILE_UNCHECKED))
    if missing.size == 0 and broken.size == 0:
        return _ok(rule, f"{checked} image files found and readable")
    parts = []
    if missing.size:
        parts.append(f"{missing.size} missing: {_examples(arrays, missing)} (e.g. {arrays.paths[int(missing[0])]})")
    if broken.size:
        first = int(broken[0])
        parts.append(f"{broken.size} unreadable: {_examples(arrays, broken)} ({arrays.file_errors.get(first, '')})")
    return _flag(
        rule,
        Severity.ERROR,
        f"of {checked} image files, " + "; ".join(parts),
        "wrong image folder (data.train_images / data.val_images), files not copied, or corrupt files",
        "point data.*_images at the folder holding the files named in the annotations, or remove "
        "these images from the annotations",
        missing=int(missing.size),
        unreadable=int(broken.size),
        samples=_offender_rows(arrays, np.concatenate([missing, broken])),
    )


def check_image_sizes(arrays: TargetArrays) -> Verdict:
    """Declared image sizes (COCO width/height) against the file headers."""
    rule = "image_size_mismatch"
    if arrays.header_sizes is None:
        return _skip(rule, "image files not checked")
    hw = arrays.header_sizes
    declared = np.stack([arrays.widths, arrays.heights], axis=1)
    both = np.all(np.isfinite(hw), axis=1) & np.all(np.isfinite(declared), axis=1)
    differ = both & np.any(np.abs(hw - declared) > 0.5, axis=1)
    n = int(differ.sum())
    if n == 0:
        return _ok(rule, f"{int(both.sum())} declared sizes match the files")
    swapped = differ & (np.abs(hw[:, 0] - declared[:, 1]) <= 0.5) & (np.abs(hw[:, 1] - declared[:, 0]) <= 0.5)
    first = int(np.flatnonzero(differ)[0])
    return _flag(
        rule,
        Severity.WARNING,
        f"{n} images differ from their declared size, e.g. {arrays.name(first)}: declared "
        f"{declared[first, 0]:g}x{declared[first, 1]:g}, file {hw[first, 0]:g}x{hw[first, 1]:g}"
        + (f"; {int(swapped.sum())} are width/height swapped (EXIF rotation?)" if swapped.any() else ""),
        "the images were resized or rotated after annotating, so the boxes no longer sit on the objects",
        "re-export the annotations for the current files (or the files for the annotations); "
        "strip EXIF orientation consistently",
        count=n,
        samples=_offender_rows(arrays, np.flatnonzero(differ)),
    )


def check_duplicate_image_ids(arrays: TargetArrays) -> Verdict:
    """The same image id on two samples: COCO evaluation merges their ground truth."""
    rule = "duplicate_image_ids"
    if arrays.num_images == 0:
        return _ok(rule, "no images")
    ids, counts = np.unique(arrays.image_ids, return_counts=True)
    dup = ids[counts > 1]
    listed = sorted({i for i, _ in arrays.duplicate_entries})
    if dup.size == 0 and not listed:
        return _ok(rule, f"{arrays.num_images} unique image ids")
    parts = []
    if dup.size:
        rows = np.flatnonzero(np.isin(arrays.image_ids, dup))
        first_id = int(arrays.image_ids[rows[0]])
        same = np.flatnonzero(arrays.image_ids == first_id)
        parts.append(
            f"{dup.size} image ids used by more than one sample ({rows.size} samples), e.g. id "
            f"{first_id} by {_examples(arrays, same)}"
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
    return _flag(
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
        return _flag(rule, Severity.ERROR, f"the {split} split has no images", "an empty dataset",
                     "check data." + split)
    if k == 0:
        return _ok(rule, f"every one of {n} images has objects")
    if k == n:
        return _flag(
            rule,
            Severity.ERROR,
            f"none of the {n} {split} images has an object",
            "annotations not loaded (wrong file, every category filtered out) or all crowd boxes",
            "check the annotation file and data.classes",
            count=k,
        )
    text = f"{k} of {n} images have no objects (valid: they train as background), e.g. {_examples(arrays, empty)}"
    if k > majority * n:
        return _flag(
            rule,
            Severity.INFO,
            text,
            "most images are background-only",
            "fine if intended; otherwise check that their annotations were exported",
            count=k,
        )
    return _ok(rule, text)


def check_anchor_coverage(
    arrays: TargetArrays,
    *,
    min_size: float,
    max_size: float,
    anchor_sizes: Sequence[float],
    aspect_ratios: Sequence[float],
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
    use = _valid_boxes(arrays) & np.isfinite(w_img) & np.isfinite(h_img) & (w_img > 0) & (h_img > 0)
    n = int(use.sum())
    if n == 0:
        return _skip(rule, "no valid boxes with known image size") if arrays.num_boxes else _ok(rule, "no boxes")
    b = arrays.boxes[use]
    scale = resize_scale(w_img[use], h_img[use], min_size, max_size)
    wh = np.stack([(b[:, 2] - b[:, 0]) * scale, (b[:, 3] - b[:, 1]) * scale], axis=1)
    anchors = anchor_shapes(anchor_sizes, aspect_ratios)
    best = best_anchor_iou(wh, anchors)
    below = float((best < iou_thresh).mean())
    low = best < poor_iou
    share = float(low.mean())
    k = int(low.sum())
    desc = (
        f"after resizing (min_size {min_size:g}, max_size {max_size:g}) with anchors "
        f"{'/'.join(f'{s:g}' for s in anchor_sizes)} px x ratios {'/'.join(f'{r:g}' for r in aspect_ratios)}"
    )
    if share <= max_share:
        return _ok(
            rule,
            f"{share:.0%} of {n} boxes match no anchor even at IoU {poor_iou:g} ({below:.0%} below "
            f"{iou_thresh:g}, normal for anchors an octave apart) {desc}",
        )
    side = np.sqrt(wh[:, 0] * wh[:, 1])
    small = low & (side < min(anchor_sizes))
    large = low & (side > max(anchor_sizes))
    odd = low & ~small & ~large
    rows = arrays.box_image[np.flatnonzero(use)[low]]
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
    return _flag(
        rule,
        Severity.WARNING,
        f"{share:.0%} of {n} boxes ({k}) have no anchor with IoU >= {poor_iou:g} ({below:.0%} "
        f"below the RPN's {iou_thresh:g}) {desc}: "
        + "; ".join(kinds) + f"; e.g. {_examples(arrays, rows)}",
        "the RPN only gets its single best low-quality match for these objects, so they train "
        "weakly and are often missed",
        fix,
        share=share,
        share_below_fg=below,
        count=k,
        small=int(small.sum()),
        large=int(large.sum()),
        elongated=int(odd.sum()),
    )


# ================================================================================ report


def class_histogram(arrays: TargetArrays, classes: Sequence[str]) -> dict[str, int]:
    """Boxes per class name (label order); invalid labels get their own ``label N`` keys."""
    out = {name: 0 for name in classes}
    known = _labels_known(arrays)
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
    valid = _valid_boxes(arrays)
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
    model_min_size: float,
    model_max_size: float,
    anchor_sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    samples: Sequence[ImageSample] = (),
) -> SplitScan:
    """Every check over already-extracted arrays (pure: no I/O)."""
    verdicts = [
        check_degenerate_boxes(arrays),
        check_boxes_outside(arrays),
        check_normalized_coords(arrays),
        check_xywh_as_xyxy(arrays),
        check_label_zero(arrays),
        check_label_range(arrays, num_classes, classes),
        check_class_mismatch(arrays, classes, split=split),
        check_target_dtypes(arrays, samples),
        check_image_range(samples),
        check_unreadable_images(arrays),
        check_image_sizes(arrays),
        check_duplicate_image_ids(arrays),
        check_empty_images(arrays, split=split),
        check_anchor_coverage(
            arrays,
            min_size=model_min_size,
            max_size=model_max_size,
            anchor_sizes=anchor_sizes,
            aspect_ratios=aspect_ratios,
        ),
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
    model_min_size: float,
    model_max_size: float,
    anchor_sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    check_files: bool = True,
    decode_samples: int = 4,
    size_decode_limit: int = 200,
) -> SplitScan:
    """Extract ``dataset``'s targets (headers only), decode ``decode_samples`` samples
    through the pipeline, and run every check."""
    started = time.perf_counter()
    arrays = extract_targets(dataset)
    if check_files:
        read_image_headers(arrays)
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
        model_min_size=model_min_size,
        model_max_size=model_max_size,
        anchor_sizes=anchor_sizes,
        aspect_ratios=aspect_ratios,
        samples=samples,
    )
    from cockpit.diagnostics.data_policy import apply_policy

    scan.verdicts = apply_policy(scan.verdicts, dataset=dataset, arrays=arrays, samples=samples)
    scan.verdicts.insert(0, _ok("dataset_load", f"{arrays.num_images} samples"))
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
        "data": _jsonable(flag.data) if flag else {},
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
        return _jsonable({
            "splits": {
                name: dict(scan.summary, seconds=round(scan.seconds, 3)) for name, scan in self.splits.items()
            },
            "verdicts": [verdict_dict(v, s) for s, v in self.verdicts()],
            "summary": dict(totals, **self.counts(), has_errors=self.has_errors, seconds=round(self.seconds, 3)),
            "model": self.model,
        })


def _load_failure(split: str, error: BaseException) -> SplitScan:
    verdict = _flag(
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
) -> PreflightReport:
    """Build each configured split with the eval transform and scan it.

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
            outcome["report"] = _run_preflight(config, splits=splits, check_files=check_files, decode_samples=decode_samples)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=work, name="cockpit-preflight", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]


def _run_preflight(config: Any, *, splits: Sequence[str], check_files: bool, decode_samples: int) -> PreflightReport:
    from cockpit.data.loader import build_dataset  # lazy: pulls in torch/torchvision

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
            dataset = build_dataset(config, split, train=False)
        except Exception as exc:  # DatasetError above all, but a user module may raise anything
            report.splits[split] = _load_failure(split, exc)
            continue
        report.splits[split] = scan_split(
            dataset,
            split=split,
            num_classes=config.data.num_classes,
            classes=classes,
            model_min_size=spec.min_size,
            model_max_size=spec.max_size,
            anchor_sizes=spec.sizes,
            aspect_ratios=spec.aspect_ratios,
            check_files=check_files,
            decode_samples=decode_samples,
        )
    report.seconds = time.perf_counter() - started
    return report


# ================================================================================= table

_MARK = {None: "ok", "info": "info", "warning": "WARN", "error": "ERROR"}


def _cell(verdict: Verdict | None) -> str:
    if verdict is None:
        return ""
    if verdict.state == CheckState.NOT_CHECKED:
        return "-"
    return _MARK[verdict.flag.severity.value if verdict.flag else None]


def format_table(report: PreflightReport, width: int = 100) -> str:
    """A plain-text table: one row per check with a column per split, then every problem
    with its evidence, cause and fix, then the split statistics."""
    import textwrap

    names = list(report.splits)
    by_rule: dict[str, dict[str, Verdict]] = {}
    order: list[str] = []
    for split, verdict in report.verdicts():
        if verdict.rule not in by_rule:
            order.append(verdict.rule)
        by_rule.setdefault(verdict.rule, {})[split] = verdict
    title_w = max([len("check")] + [len(next(iter(by_rule[r].values())).title) for r in order])
    col_w = max([6] + [len(n) for n in names])
    lines = ["Pre-flight check", ""]
    header = "  " + "check".ljust(title_w) + "".join("  " + n.ljust(col_w) for n in names)
    lines += [header, "  " + "-" * (len(header) - 2)]
    for rule in order:
        cells = by_rule[rule]
        title = next(iter(cells.values())).title
        lines.append("  " + title.ljust(title_w) + "".join("  " + _cell(cells.get(n)).ljust(col_w) for n in names))
    flagged = report.flagged()
    if flagged:
        lines += ["", "Problems:"]
        wrap = lambda label, text: textwrap.wrap(  # noqa: E731
            text, width=width, initial_indent=f"    {label}", subsequent_indent=" " * (4 + len(label))
        )
        rank = {"error": 0, "warning": 1, "info": 2}
        for split, v in sorted(flagged, key=lambda sv: rank[sv[1].flag.severity.value]):
            flag = v.flag
            lines.append(f"  [{flag.severity.value.upper()}] {v.title} ({split})")
            lines += wrap("evidence: ", flag.evidence)
            lines += wrap("cause:    ", flag.likely_cause)
            lines += wrap("fix:      ", flag.fix)
    lines += [""]
    for name, scan in report.splits.items():
        s = scan.summary
        lines.append(
            f"  {name}: {s.get('images', 0)} images, {s.get('boxes', 0)} boxes, "
            f"{s.get('images_without_objects', 0)} without objects"
        )
        if s.get("class_histogram"):
            lines.append("    classes:    " + ", ".join(f"{k} {v}" for k, v in s["class_histogram"].items()))
        if s.get("box_size_histogram"):
            lines.append("    box sizes:  " + ", ".join(f"{k} {v}" for k, v in s["box_size_histogram"].items())
                         + "  (sqrt(area), px)")
    counts = report.counts()
    verdict = "FAILED" if report.has_errors else "passed"
    lines += ["", f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"]
    return "\n".join(lines)
