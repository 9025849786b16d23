"""Penn-Fudan layout: exact boxes from instance masks, the zero-object case, errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from cockpit.data.errors import DatasetError
from cockpit.data.masks import MasksDataset, masks_to_boxes_labels
from cockpit.data.transforms import train_transform


def test_masks_to_boxes_exact():
    mask = torch.zeros((10, 12), dtype=torch.uint8)
    mask[2:5, 3:7] = 1  # rows 2..4, cols 3..6
    mask[6, 0] = 2  # a single pixel
    mask[7:10, 9:12] = 4  # ids need not be contiguous
    boxes, labels = masks_to_boxes_labels(mask)
    assert boxes.dtype == torch.float32 and labels.dtype == torch.int64
    assert boxes.tolist() == [[3, 2, 6, 4], [0, 6, 0, 6], [9, 7, 11, 9]]
    assert labels.tolist() == [1, 1, 1]


def test_masks_to_boxes_zero_objects():
    boxes, labels = masks_to_boxes_labels(np.zeros((5, 5), dtype=np.uint8))
    assert boxes.shape == (0, 4) and boxes.dtype == torch.float32
    assert labels.shape == (0,) and labels.dtype == torch.int64


def _write_sample(root, stem, mask):
    (root / "PNGImages").mkdir(parents=True, exist_ok=True)
    (root / "PedMasks").mkdir(parents=True, exist_ok=True)
    h, w = mask.shape
    Image.fromarray(np.full((h, w, 3), 90, dtype=np.uint8)).save(root / "PNGImages" / f"{stem}.png")
    Image.fromarray(mask.astype(np.uint8), mode="L").save(root / "PedMasks" / f"{stem}_mask.png")


def test_masks_dataset(tmp_path):
    mask = np.zeros((20, 30), dtype=np.uint8)
    mask[2:6, 4:10] = 1
    mask[10:15, 20:28] = 2
    _write_sample(tmp_path, "a", mask)
    _write_sample(tmp_path, "b", np.zeros((16, 24), dtype=np.uint8))
    ds = MasksDataset(tmp_path, ["person"], transform=train_transform())
    assert len(ds) == 2
    info = ds.sample_info(0)
    assert (info.width, info.height, info.path) == (30, 20, str(tmp_path / "PNGImages" / "a.png"))
    raw = ds.raw_target(0)
    assert raw["boxes"].tolist() == [[4, 2, 9, 5], [20, 10, 27, 14]]
    assert raw["area"].tolist() == [24.0, 40.0]
    # The zero-object image comes out of the training pipeline with well-formed empty tensors.
    image, target = ds[1]
    assert image.shape == (3, 16, 24) and image.dtype == torch.float32
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    assert target["labels"].dtype == torch.int64 and target["image_id"] == 1
    coco = ds.coco_api()
    assert len(coco.anns) == 2 and [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["person"]


def test_masks_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        MasksDataset(tmp_path / "nope", ["person"])
    _write_sample(tmp_path, "a", np.zeros((4, 4), dtype=np.uint8))
    (tmp_path / "PedMasks" / "a_mask.png").unlink()
    with pytest.raises(DatasetError, match="a_mask.png"):
        MasksDataset(tmp_path, ["person"])
    with pytest.raises(DatasetError, match="one foreground class"):
        MasksDataset(tmp_path, ["a", "b"])
