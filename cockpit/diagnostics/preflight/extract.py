"""Extraction: the pre-flight's only I/O.

Targets come from ``raw_target`` and sizes from ``sample_info`` (COCO: straight from the
JSON), never from decoding an image; image files are opened for their header only; a
handful of samples are decoded through the real pipeline to see what the model will get.
Everything lands in one :class:`TargetArrays`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from cockpit.diagnostics.preflight.arrays import (
    FILE_MISSING,
    FILE_OK,
    FILE_UNREADABLE,
    FLOAT_NAMES,
    LABEL_MISSING,
    TargetArrays,
    TargetBuilder,
    dtype_name,
    to_numpy,
)
from cockpit.engine.events import ProgressTask
from cockpit.progress import ProgressMeter, ProgressSink


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


def _coco_images(data: dict[str, Any]) -> tuple[dict[Any, dict[str, Any]], list[tuple[int, str]]]:
    """``images`` by id, and the entries repeating an earlier id (pycocotools merges them silently)."""
    by_id: dict[Any, dict[str, Any]] = {}
    duplicates: list[tuple[int, str]] = []
    for im in data.get("images") or []:
        if im["id"] in by_id:
            duplicates.append((int(im["id"]), str(im.get("file_name", ""))))
        else:
            by_id[im["id"]] = im
    return by_id, duplicates


def _coco_image_facts(
    by_id: dict[Any, dict[str, Any]], ids: Sequence[int], images_dir: str | os.PathLike | None
) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Per row: the image path and the declared width and height (NaN when not declared)."""
    base = os.fspath(images_dir) if images_dir is not None else None
    paths: list[str | None] = []
    widths = np.full(len(ids), np.nan)
    heights = np.full(len(ids), np.nan)
    for row, image_id in enumerate(ids):
        im = by_id.get(image_id, {})
        name = im.get("file_name")
        paths.append(os.path.join(base, name) if (base is not None and name) else name)
        if im.get("width"):
            widths[row] = float(im["width"])
        if im.get("height"):
            heights[row] = float(im["height"])
    return paths, widths, heights


def _coco_bboxes(anns: list[dict[str, Any]], rows: np.ndarray, problems: list[tuple[int, str, str]]) -> np.ndarray:
    """(A, 4) ``[x, y, w, h]``; a malformed ``bbox`` becomes NaN and a ``boxes_shape`` problem."""
    try:
        return np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4)
    except (KeyError, TypeError, ValueError):  # a missing or malformed bbox somewhere: go one by one
        bbox = np.full((len(anns), 4), np.nan)
        for i, a in enumerate(anns):
            try:
                bbox[i] = np.asarray(a["bbox"], dtype=np.float64).reshape(4)
            except (KeyError, TypeError, ValueError):
                if rows[i] >= 0:
                    problems.append((int(rows[i]), "boxes_shape", f"bbox {a.get('bbox')!r}"))
        return bbox


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
    by_id, duplicates = _coco_images(data)
    ids = list(ids) if ids is not None else sorted(by_id)
    n = len(ids)
    row_of = {image_id: row for row, image_id in enumerate(ids)}
    paths, widths, heights = _coco_image_facts(by_id, ids, images_dir)
    problems: list[tuple[int, str, str]] = []
    anns = [a for a in (data.get("annotations") or []) if not a.get("iscrowd", 0)]
    rows = np.fromiter((row_of.get(a.get("image_id"), -1) for a in anns), dtype=np.int64, count=len(anns))
    bbox = _coco_bboxes(anns, rows, problems)
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
        builder = TargetBuilder()
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


def read_image_headers(arrays: TargetArrays, progress: ProgressSink | None = None, split: str = "") -> None:
    """Open every image file for its header only (PIL reads a few bytes, no decode);
    fills ``file_status``, ``file_errors``, ``header_sizes`` and unknown widths/heights.
    ``progress`` hears how many headers are read (the one per-image loop of the check)."""
    from PIL import Image

    n = arrays.num_images
    meter = ProgressMeter(ProgressTask.PREFLIGHT, n, progress, detail=f"{split} images".strip())
    status = np.zeros(n, dtype=np.int8)
    sizes = np.full((n, 2), np.nan)
    errors: dict[int, str] = {}
    for row, path in enumerate(arrays.paths):
        if not path:
            meter.advance()
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
        meter.advance()
    meter.finish()
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
            if b is not None and dtype_name(b) not in FLOAT_NAMES:
                problems.append(f"boxes {dtype_name(b)} after the transform")
            if b is not None and hasattr(b, "shape") and (len(b.shape) != 2 or b.shape[-1] != 4):
                problems.append(f"boxes shape {tuple(b.shape)} after the transform")
            if l is not None and dtype_name(l) != "int64":
                problems.append(f"labels {dtype_name(l)} after the transform")
        if kind in ("tensor", "ndarray"):
            arr = to_numpy(image)
            lo = float(arr.min()) if arr.size else math.nan
            hi = float(arr.max()) if arr.size else math.nan
            out.append(ImageSample(int(i), name, kind, dtype_name(image), tuple(int(s) for s in arr.shape), lo, hi,
                                   target_problems=tuple(problems)))
        else:
            out.append(ImageSample(int(i), name, kind, getattr(image, "mode", ""), (), target_problems=tuple(problems)))
    return out


def spread_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread over ``range(n)`` (first, last and evenly between)."""
    if n <= 0 or k <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, num=min(k, n))})
