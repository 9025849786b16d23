"""The ``coco`` format: a COCO JSON file read with pycocotools.

- Category ids may be anything (non-contiguous, unordered): they are mapped to labels
  1..K in the order of the config's ``classes``, matched by name. Names that do not match
  raise :class:`DatasetError` naming the missing and the extra ones.
- ``bbox`` is COCO ``[x, y, w, h]``; targets hold ``[x1, y1, x2, y2]``.
- Images without annotations stay in the dataset with empty targets (torchvision's
  references drop them; we keep them because background-only images are real data).
- Crowd annotations (``iscrowd = 1``) are left out of training targets but stay in the
  ground truth :meth:`CocoDataset.coco_api` returns, where COCOeval uses them to ignore
  detections inside crowds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from cockpit.data.base import DetectionDataset, SampleInfo
from cockpit.data.coco_json import checked_split, load_coco, map_categories  # noqa: F401 - re-exported
from cockpit.data.images import open_rgb


class CocoDataset(DetectionDataset):
    """COCO JSON adapter; ``image_id`` in targets is the COCO image id."""

    def __init__(
        self,
        ann_file: str | Path,
        classes: list[str],
        images_dir: str | Path | None = None,
        transform: Callable | None = None,
        coco: Any = None,
    ):
        super().__init__(classes, transform)
        self.ann_file = Path(ann_file)
        # ``coco``: the file already loaded (the pre-flight's torch-free view hands its own over).
        self.coco = coco if coco is not None else load_coco(self.ann_file)
        self.images_dir = Path(images_dir) if images_dir is not None else self.ann_file.parent
        self.label_to_category, self.category_to_label, self.ids = checked_split(
            self.coco, self.ann_file, self.images_dir, self.classes
        )

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, index: int) -> str:
        return str(self.images_dir / self.coco.imgs[self.ids[index]]["file_name"])

    def load_image(self, index: int) -> Image.Image:
        return open_rgb(self.image_path(index))

    def raw_target(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        anns = [a for a in self.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        return {
            "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor([self.category_to_label[a["category_id"]] for a in anns], dtype=torch.int64),
            "area": torch.as_tensor([float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in anns], dtype=torch.float32),
            "iscrowd": torch.zeros((len(anns),), dtype=torch.int64),
            "image_id": image_id,
        }

    def sample_info(self, index: int) -> SampleInfo:
        info = self.coco.imgs[self.ids[index]]
        width, height = info.get("width"), info.get("height")
        return SampleInfo(
            index=index,
            image_id=self.ids[index],
            path=self.image_path(index),
            width=int(width) if width is not None else None,
            height=int(height) if height is not None else None,
        )

    def coco_api(self):
        """The COCO ground truth as loaded, crowd annotations included."""
        return self.coco
