"""The ``masks`` format: the Penn-Fudan layout, so a real Penn-Fudan download works as is.

::

    root/PNGImages/X.png       the images (.png; .jpg/.jpeg also accepted)
    root/PedMasks/X_mask.png   one instance mask per image: 0 = background, 1..N = instances

Every instance is one object of the single foreground class (label 1); its box is the
tight pixel box of its mask, as in the lesson (``xmax``/``ymax`` are the last pixel
column/row, inclusive).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from cockpit.data.base import DetectionDataset, SampleInfo
from cockpit.data.errors import DatasetError
from cockpit.data.images import open_rgb

IMAGE_DIR = "PNGImages"
MASK_DIR = "PedMasks"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def masks_to_boxes_labels(mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes and labels from a 2-D instance-id mask (0 = background, ids 1..N).

    Returns ``boxes`` float32 (N, 4) xyxy -- min and max pixel index of each instance,
    in increasing id order -- and ``labels`` int64 (N,) all 1. No instance gives shapes
    (0, 4) and (0,), which torchvision's detectors train on as a background-only image.
    """
    mask = torch.as_tensor(np.asarray(mask)) if not isinstance(mask, torch.Tensor) else mask
    if mask.ndim != 2:
        raise ValueError(f"instance mask must be 2-D (H, W), got shape {tuple(mask.shape)}")
    obj_ids = torch.unique(mask)
    obj_ids = obj_ids[obj_ids != 0]
    if obj_ids.numel() == 0:
        return torch.zeros((0, 4), dtype=torch.float32), torch.zeros((0,), dtype=torch.int64)
    boxes = []
    for obj_id in obj_ids:
        ys, xs = torch.where(mask == obj_id)
        boxes.append([xs.min().item(), ys.min().item(), xs.max().item(), ys.max().item()])
    return torch.as_tensor(boxes, dtype=torch.float32), torch.ones((len(boxes),), dtype=torch.int64)


def read_instance_mask(path: Path) -> np.ndarray:
    """An instance mask file as a 2-D int array.

    Palette ("P") and grayscale masks hold the ids directly (Penn-Fudan's case); a colour
    mask is turned into ids by giving each distinct non-black colour its own id.
    """
    with Image.open(path) as im:
        if im.mode in ("P", "L", "I", "I;16", "1"):
            return np.asarray(im).astype(np.int64)
        rgb = np.asarray(im.convert("RGB"))
    flat = rgb.reshape(-1, 3).astype(np.int64)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    _, ids = np.unique(codes, return_inverse=True)
    # np.unique sorts, so black (code 0), if present, is id 0 = background.
    if codes.min() != 0:
        ids = ids + 1
    return ids.reshape(rgb.shape[:2])


class MasksDataset(DetectionDataset):
    """Penn-Fudan layout adapter: one foreground class, boxes from instance masks."""

    def __init__(self, root: str | Path, classes: list[str], transform: Callable | None = None):
        super().__init__(classes, transform)
        self.root = Path(root)
        if len(self.classes) != 1:
            raise DatasetError(
                f"the masks format has exactly one foreground class, but data.classes lists "
                f"{len(self.classes)} ({', '.join(self.classes)}); set e.g. classes = [\"{self.classes[0]}\"]"
            )
        image_dir, mask_dir = self.root / IMAGE_DIR, self.root / MASK_DIR
        for folder in (self.root, image_dir, mask_dir):
            if not folder.is_dir():
                raise DatasetError(f"masks dataset folder not found: {folder} (expected {IMAGE_DIR}/ and {MASK_DIR}/ under {self.root})")
        self.images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not self.images:
            raise DatasetError(f"no images (.png/.jpg) in {image_dir}")
        self.masks = [mask_dir / f"{p.stem}_mask.png" for p in self.images]
        missing = [m.name for m in self.masks if not m.is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DatasetError(f"{len(missing)} image(s) in {image_dir} have no mask in {mask_dir}: {shown}")
        # Boxes per index, so pre-flight scans, the COCO ground truth and every epoch's
        # __getitem__ decode each mask once (per process).
        self._targets: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.images)

    def image_path(self, index: int) -> str:
        return str(self.images[index])

    def load_image(self, index: int) -> Image.Image:
        return open_rgb(self.images[index])

    def raw_target(self, index: int) -> dict[str, Any]:
        if index not in self._targets:
            mask = read_instance_mask(self.masks[index])
            boxes, labels = masks_to_boxes_labels(mask)
            ids = np.unique(mask)
            ids = ids[ids != 0]
            # Instance pixel counts, in the same increasing-id order as the boxes: COCO's
            # small/medium/large split uses the object's area, not its box's.
            area = torch.as_tensor([(mask == i).sum() for i in ids], dtype=torch.float32).reshape(-1)
            self._targets[index] = {
                "boxes": boxes,
                "labels": labels,
                "area": area,
                "iscrowd": torch.zeros((len(labels),), dtype=torch.int64),
            }
        cached = self._targets[index]
        return {**{k: v.clone() for k, v in cached.items()}, "image_id": index}

    def sample_info(self, index: int) -> SampleInfo:
        # Image.open reads the header only; .size needs no decode.
        with Image.open(self.images[index]) as im:
            width, height = im.size
        return SampleInfo(index=index, image_id=index, path=str(self.images[index]), width=width, height=height)
