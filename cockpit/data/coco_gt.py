"""Ground truth as a pycocotools ``COCO`` object, for datasets that are not COCO files.

The ``masks`` and ``module`` adapters evaluate with the same COCOeval as the ``coco``
one; :func:`coco_from_dataset` builds the in-memory ground truth from their raw targets.
Predictions must use the same ``image_id`` (the target's) and category ids from
``dataset.label_to_category``.
"""

from __future__ import annotations

import contextlib
import io

import torch


def coco_from_dataset(ds):
    """An in-memory ``COCO`` holding every target of ``ds`` (a DetectionDataset).

    Categories come from ``ds.label_to_category`` / ``ds.classes``; ``area`` is the
    target's when it has one, else the box area; ``iscrowd`` the target's, else 0.
    Image sizes come from ``sample_info`` (decoding the image only when it has none).
    """
    from pycocotools.coco import COCO

    categories = [
        {"id": int(cat_id), "name": ds.classes[label - 1], "supercategory": "object"}
        for label, cat_id in sorted(ds.label_to_category.items())
    ]
    images, annotations = [], []
    for index in range(len(ds)):
        target = ds.raw_target(index)
        image_id = int(target.get("image_id", index))
        info = ds.sample_info(index)
        width, height = info.width, info.height
        if width is None or height is None:
            image = ds.load_image(index)
            height, width = (image.shape[-2:] if isinstance(image, torch.Tensor) else (image.height, image.width))
        images.append({"id": image_id, "width": int(width), "height": int(height), "file_name": info.path or ""})
        boxes = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
        labels = torch.as_tensor(target["labels"], dtype=torch.int64).reshape(-1)
        n = boxes.shape[0]
        area = target.get("area")
        area = torch.as_tensor(area, dtype=torch.float32).reshape(-1) if area is not None else None
        iscrowd = target.get("iscrowd")
        iscrowd = torch.as_tensor(iscrowd, dtype=torch.int64).reshape(-1) if iscrowd is not None else None
        for i, ((x1, y1, x2, y2), label) in enumerate(zip(boxes.tolist(), labels.tolist())):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,  # COCOeval needs ids >= 1
                    "image_id": image_id,
                    "category_id": int(ds.label_to_category.get(int(label), int(label))),
                    "bbox": [x1, y1, w, h],
                    "area": float(area[i]) if area is not None and i < n and area.numel() == n else float(w * h),
                    "iscrowd": int(iscrowd[i]) if iscrowd is not None and iscrowd.numel() == n else 0,
                }
            )
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations, "categories": categories}
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints "creating index..."
        coco.createIndex()
    return coco
