"""torchvision.transforms.v2 pipelines that keep boxes in sync with the image.

- :func:`apply_transform` wraps an ``(image, target)`` pair in tv_tensors, runs a v2
  transform and unwraps the result into what torchvision detection models want.
- :func:`train_transform` / :func:`eval_transform` are the presets.
- :func:`set_augment_probabilities` changes the augmentation probabilities of a live
  train transform between iterations.

Live changes and DataLoader workers: the probabilities live in a small shared-memory
tensor (:class:`LiveProbabilities`), and the flip / photometric transforms read it each
time they run. Worker processes see the same memory (inherited by fork, or passed as a
shared-memory handle by torch's multiprocessing pickler with spawn), so a change made
in the main process reaches workers already running -- only the few batches the workers
have prefetched were drawn with the old values.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torchvision.transforms.v2 as T
from PIL.Image import Image as PILImage
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from cockpit.data.images import to_rgb


class LiveProbabilities:
    """Augmentation probabilities shared with DataLoader workers (``hflip``, ``photometric``)."""

    _SLOTS = {"hflip": 0, "photometric": 1}

    def __init__(self, hflip: float = 0.5, photometric: float = 0.5):
        # share_memory_ so that forked/spawned workers read the value the main process
        # writes, instead of a copy frozen when the worker started.
        self.values = torch.tensor([float(hflip), float(photometric)], dtype=torch.float64).share_memory_()
        # A numpy view of the same shared memory: the transforms read ``p`` six times a
        # sample, and indexing the tensor (a new view each time) cost ~4 us a read.
        self._view = self.values.numpy()

    def __getstate__(self) -> dict:
        # Pickled for spawned workers: the tensor travels as a shared-memory handle; a
        # pickled numpy view would arrive as a private copy, blind to later changes.
        return {"values": self.values}

    def __setstate__(self, state: dict) -> None:
        self.values = state["values"]
        self._view = self.values.numpy()

    def get(self, name: str) -> float:
        return float(self._view[self._SLOTS[name]])

    def set(self, name: str, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} probability must be in [0, 1], got {value}")
        self.values[self._SLOTS[name]] = float(value)


class LiveHorizontalFlip(T.RandomHorizontalFlip):
    """RandomHorizontalFlip whose ``p`` is read from :class:`LiveProbabilities` at each call."""

    def __init__(self, live: LiveProbabilities):
        self._live = live
        super().__init__(p=live.get("hflip"))

    @property
    def p(self) -> float:  # type: ignore[override]
        return self._live.get("hflip")

    @p.setter
    def p(self, value: float) -> None:
        self._live.set("hflip", value)


class LivePhotometricDistort(T.RandomPhotometricDistort):
    """RandomPhotometricDistort whose ``p`` is read from :class:`LiveProbabilities` at each call."""

    def __init__(self, live: LiveProbabilities):
        self._live = live
        super().__init__(p=live.get("photometric"))

    @property
    def p(self) -> float:  # type: ignore[override]
        return self._live.get("photometric")

    @p.setter
    def p(self, value: float) -> None:
        self._live.set("photometric", value)


class SanitizeBoxes(T.SanitizeBoundingBoxes):
    """torchvision's ``SanitizeBoundingBoxes``, with a fast path when every box is valid.

    Flips and colour changes never make a box degenerate, so almost every sample passes
    untouched; torchvision's transform still flattens the inputs, builds a mask with a
    dozen small tensor ops and indexes every field -- ~0.3 ms a sample, ~1% of a `tiny`
    iteration on 2 cores (bench/notes.md). The same validity test (torchvision's
    ``_get_sanitize_bounding_boxes_mask``: sides >= ``min_size``, area >= ``min_area``,
    every coordinate >= 0 and inside the canvas; NaN fails) is run on the few boxes as
    Python floats; any failure, or anything but one XYXY box set in an (image, target)
    pair, goes through torchvision's own transform.
    """

    def forward(self, *inputs: Any) -> Any:
        boxes = _only_boxes(inputs)
        if boxes is not None and _all_valid(boxes, self.min_size, getattr(self, "min_area", 1.0)):
            return inputs if len(inputs) > 1 else inputs[0]
        return super().forward(*inputs)


def _only_boxes(inputs: tuple) -> "tv_tensors.BoundingBoxes | None":
    if len(inputs) != 2 or not isinstance(inputs[1], dict):
        return None
    found = [v for v in inputs[1].values() if isinstance(v, tv_tensors.BoundingBoxes)]
    if len(found) != 1 or found[0].format != tv_tensors.BoundingBoxFormat.XYXY or found[0].ndim != 2:
        return None
    return found[0]


def _all_valid(boxes: "tv_tensors.BoundingBoxes", min_size: float, min_area: float) -> bool:
    height, width = boxes.canvas_size
    for x1, y1, x2, y2 in boxes.as_subclass(torch.Tensor).tolist():
        w, h = x2 - x1, y2 - y1
        inside = 0 <= x1 <= width and 0 <= x2 <= width and 0 <= y1 <= height and 0 <= y2 <= height
        if not (inside and w >= min_size and h >= min_size and w * h >= min_area):
            return False
    return True


class DetectionTransform(T.Compose):
    """A Compose that remembers its :class:`LiveProbabilities` (``None`` for eval presets)."""

    def __init__(self, transforms: list[Callable], live: LiveProbabilities | None = None):
        super().__init__(transforms)
        self.live = live


def train_transform(augment: Any = None) -> DetectionTransform:
    """Photometric distort + horizontal flip + ToImage + ToDtype(float32) + SanitizeBoundingBoxes.

    ``augment`` is the config's ``[augment]`` section (anything with ``hflip`` and
    ``photometric`` attributes); ``None`` uses 0.5 / 0.5.
    """
    hflip = getattr(augment, "hflip", 0.5)
    photometric = getattr(augment, "photometric", 0.5)
    live = LiveProbabilities(hflip=hflip, photometric=photometric)
    return DetectionTransform(
        [
            LivePhotometricDistort(live),
            LiveHorizontalFlip(live),
            T.ToImage(),
            T.ToDtype(torch.float32, scale=True),
            # Last, so boxes that augmentation made degenerate are dropped, not crashed on.
            SanitizeBoxes(),
        ],
        live=live,
    )


def eval_transform() -> DetectionTransform:
    """ToImage + ToDtype(float32, scale=True): no augmentation, boxes untouched."""
    return DetectionTransform([T.ToImage(), T.ToDtype(torch.float32, scale=True)])


def set_augment_probabilities(transform: Any, hflip: float | None = None, photometric: float | None = None) -> None:
    """Change the flip / photometric probabilities of a :func:`train_transform` in place.

    Safe to call between iterations; reaches running DataLoader workers too (see the
    module docstring). ``None`` leaves a probability as it is. Transforms built some other
    way are searched for RandomHorizontalFlip / RandomPhotometricDistort instances, whose
    ``p`` is set directly (such a change reaches workers only when they restart, i.e. at
    the next epoch with ``persistent_workers=False``).
    """
    live = getattr(transform, "live", None)
    if isinstance(live, LiveProbabilities):
        if hflip is not None:
            live.set("hflip", hflip)
        if photometric is not None:
            live.set("photometric", photometric)
        return
    for t in _walk(transform):
        if hflip is not None and isinstance(t, T.RandomHorizontalFlip):
            t.p = float(hflip)
        if photometric is not None and isinstance(t, T.RandomPhotometricDistort):
            t.p = float(photometric)


def _walk(transform: Any):
    if transform is None:
        return
    yield transform
    for child in getattr(transform, "transforms", None) or []:
        yield from _walk(child)


def _to_image(image: Any) -> tv_tensors.Image:
    """PIL / CHW tensor / HWC numpy -> tv_tensors.Image (dtype kept)."""
    if isinstance(image, tv_tensors.Image):
        return image
    if isinstance(image, torch.Tensor):
        if image.ndim == 2:
            image = image.unsqueeze(0)
        return tv_tensors.Image(image)
    try:
        import numpy as np

        if isinstance(image, np.ndarray):
            array = image if image.ndim == 3 else image[:, :, None]
            return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1))
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    # PIL: keep uint8; ToDtype(scale=True) later maps it to [0, 1].
    return tv_tensors.Image(F.pil_to_tensor(to_rgb(image)))


def apply_transform(transform: Callable | None, image: Any, target: dict[str, Any]):
    """Run ``transform`` on ``(image, target)`` with boxes that follow the image.

    Returns ``(image, target)``: image a plain float32 CHW tensor (uint8 input scaled to
    [0, 1]; float input left as it is), target a dict of plain tensors ``boxes`` float32
    (N, 4) xyxy, ``labels`` int64 (N,), ``area`` float32 (N,), ``iscrowd`` int64 (N,)
    and ``image_id`` int. Boxes removed by a SanitizeBoundingBoxes step take their label,
    area and iscrowd with them.
    """
    if isinstance(image, PILImage):
        # Augment the PIL image and let the pipeline's ToImage convert it, as the lesson's
        # recipe does: RandomPhotometricDistort on a PIL image runs in PIL's C code, on a
        # uint8 tensor it costs ~1.5 ms more per 160 px image (torch's HSV round trip for
        # the hue jitter) -- ~5% of a tiny-model iteration on 2 CPU cores (BENCHMARKS.md).
        img = to_rgb(image)  # a 16-bit image scaled, not clipped to white
        height, width = img.height, img.width
    else:
        img = _to_image(image)
        height, width = img.shape[-2:]
    boxes = torch.as_tensor(target.get("boxes", torch.zeros((0, 4))), dtype=torch.float32).reshape(-1, 4)
    n = boxes.shape[0]
    labels = torch.as_tensor(target.get("labels", torch.zeros((n,))), dtype=torch.int64).reshape(-1)
    if "area" in target and target["area"] is not None:
        area = torch.as_tensor(target["area"], dtype=torch.float32).reshape(-1)
    else:
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if "iscrowd" in target and target["iscrowd"] is not None:
        iscrowd = torch.as_tensor(target["iscrowd"], dtype=torch.int64).reshape(-1)
    else:
        iscrowd = torch.zeros((n,), dtype=torch.int64)

    if transform is None:
        transform = eval_transform()
    # The transform sees row indices as "labels": whatever rows SanitizeBoundingBoxes keeps,
    # the same rows of labels / area / iscrowd are kept below. This works on every
    # torchvision v2 release, unlike tuple-returning labels_getters (0.20+ only).
    wrapped = {
        "boxes": tv_tensors.BoundingBoxes(boxes, format=tv_tensors.BoundingBoxFormat.XYXY, canvas_size=(int(height), int(width))),
        "labels": torch.arange(n, dtype=torch.int64),
    }
    out_image, out_target = transform(img, wrapped)
    if not isinstance(out_image, torch.Tensor):  # a transform without ToImage handed PIL back
        out_image = _to_image(out_image)
    keep = out_target["labels"]
    if keep is not wrapped["labels"]:
        # Rows were dropped (boxes the augmentation made degenerate): the same rows go here.
        # Handed back untouched -- the usual case -- it needs no indexing.
        labels, area, iscrowd = labels[keep], area[keep], iscrowd[keep]
    out_image = F.to_dtype(out_image, torch.float32, scale=True) if out_image.dtype != torch.float32 else out_image
    return out_image.as_subclass(torch.Tensor), {
        "boxes": out_target["boxes"].as_subclass(torch.Tensor).to(torch.float32).reshape(-1, 4),
        "labels": labels,
        "image_id": int(target.get("image_id", 0)),
        "area": area,
        "iscrowd": iscrowd,
    }
