"""SanitizeBoxes gives torchvision's SanitizeBoundingBoxes' result, box for box, with or
without its fast path (cockpit/data/transforms.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2 as T
from torchvision import tv_tensors

from cockpit.data.transforms import SanitizeBoxes

CANVAS = (100, 120)  # height, width

CASES = {
    "all valid": [[0, 0, 10, 10], [5.5, 6.5, 119.5, 99], [0, 0, 120, 100]],
    "zero width": [[0, 0, 10, 10], [30, 30, 30, 40]],
    "thinner than one pixel": [[10, 10, 10.5, 40]],
    "area under one": [[10, 10, 11, 10.9]],
    "negative corner": [[-1, 0, 10, 10], [1, 1, 5, 5]],
    "past the right edge": [[100, 10, 121, 20]],
    "past the bottom": [[10, 90, 20, 100.5]],
    "nan": [[math.nan, 0, 10, 10], [0, 0, 4, 4]],
    "inf": [[0, 0, math.inf, 10]],
    "none": [],
}


def sample(rows):
    boxes = torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)
    image = torch.zeros(3, *CANVAS)
    target = {
        "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=CANVAS),
        "labels": torch.arange(boxes.shape[0]),
    }
    return image, target


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_boxes_and_labels_kept_as_torchvision(name):
    ours = SanitizeBoxes()(*sample(CASES[name]))
    reference = T.SanitizeBoundingBoxes()(*sample(CASES[name]))
    assert torch.equal(ours[1]["labels"], reference[1]["labels"])
    assert torch.equal(ours[1]["boxes"].as_subclass(torch.Tensor), reference[1]["boxes"].as_subclass(torch.Tensor))
    assert isinstance(ours[1]["boxes"], tv_tensors.BoundingBoxes)


def test_a_degenerate_box_is_dropped_with_its_label():
    _, target = SanitizeBoxes()(*sample(CASES["zero width"]))
    assert target["labels"].tolist() == [0]


def test_valid_boxes_pass_untouched_without_torchvision_s_pass(monkeypatch):
    calls = []
    monkeypatch.setattr(T.SanitizeBoundingBoxes, "forward", lambda self, *inputs: calls.append(1))
    image, target = sample(CASES["all valid"])
    out_image, out_target = SanitizeBoxes()(image, target)
    assert out_image is image and out_target is target and calls == []
    SanitizeBoxes()(*sample(CASES["nan"]))
    assert calls == [1]  # anything invalid goes through torchvision's own transform
