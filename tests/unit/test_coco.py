"""COCO JSON: non-contiguous category ids, empty images, crowd boxes, name mismatches."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cockpit.data.coco import CocoDataset
from cockpit.data.errors import DatasetError


def _write(tmp_path, categories=None):
    categories = categories or [{"id": 7, "name": "square"}, {"id": 3, "name": "circle"}]
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((40, 50, 3), dtype=np.uint8)).save(tmp_path / name)
    data = {
        "images": [
            {"id": 10, "file_name": "a.png", "width": 50, "height": 40},
            {"id": 20, "file_name": "b.png", "width": 50, "height": 40},  # no annotations
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [5, 6, 10, 20], "area": 200, "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [30, 2, 8, 8], "area": 50, "iscrowd": 0},
            {"id": 3, "image_id": 10, "category_id": 3, "bbox": [0, 30, 40, 10], "area": 400, "iscrowd": 1},
        ],
        "categories": categories,
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_non_contiguous_ids_map_in_classes_order(tmp_path):
    ds = CocoDataset(_write(tmp_path), ["circle", "square"])
    assert ds.label_to_category == {1: 3, 2: 7}
    target = ds.raw_target(0)
    assert target["image_id"] == 10
    assert target["boxes"].tolist() == [[5, 6, 15, 26], [30, 2, 38, 10]]  # xywh -> xyxy
    assert target["labels"].tolist() == [2, 1]
    info = ds.sample_info(0)
    assert (info.image_id, info.width, info.height, info.path) == (10, 50, 40, str(tmp_path / "a.png"))


def test_image_without_annotations_is_kept_empty(tmp_path):
    ds = CocoDataset(_write(tmp_path), ["circle", "square"])
    assert len(ds) == 2
    image, target = ds[1]
    assert image.shape == (3, 40, 50)
    assert target["boxes"].shape == (0, 4) and target["labels"].dtype == torch.int64 and target["image_id"] == 20


def test_crowd_box_left_out_of_targets_but_in_ground_truth(tmp_path):
    ds = CocoDataset(_write(tmp_path), ["circle", "square"])
    assert ds.raw_target(0)["iscrowd"].tolist() == [0, 0] and len(ds[0][1]["boxes"]) == 2
    gt = ds.coco_api()
    assert [a["iscrowd"] for a in gt.loadAnns(gt.getAnnIds(imgIds=[10]))] == [0, 0, 1]


def test_class_name_mismatch_names_missing_and_extra(tmp_path):
    path = _write(tmp_path)
    with pytest.raises(DatasetError) as err:
        CocoDataset(path, ["circle", "triangle"])
    message = str(err.value)
    assert "not in the JSON: triangle" in message and "not in data.classes: square" in message


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(DatasetError, match="nope.json"):
        CocoDataset(tmp_path / "nope.json", ["a"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        CocoDataset(tmp_path / "bad.json", ["a"])
