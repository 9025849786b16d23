"""Model outputs to COCO results, and the detection counts scored beside COCOeval."""

from __future__ import annotations

import pytest
import torch

from cockpit.engine.evaluation import score_outputs, to_coco_results


def output(boxes: list[list[float]], scores: list[float], labels: list[int]) -> dict:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def test_boxes_become_xywh_with_dataset_category_ids_in_detection_order() -> None:
    outputs = [
        output([[10, 20, 30, 60], [0, 0, 5, 5]], [0.9, 0.25], [1, 2]),
        output([], [], []),  # an image without detections adds nothing
        output([[1.125, 2.5, 11.125, 4.5]], [0.123456], [2]),
    ]
    results = to_coco_results(outputs, [7, 8, 9], {1: 3, 2: 17})
    assert results == [
        {"image_id": 7, "category_id": 3, "bbox": [10.0, 20.0, 20.0, 40.0], "score": 0.9},
        {"image_id": 7, "category_id": 17, "bbox": [0.0, 0.0, 5.0, 5.0], "score": 0.25},
        {"image_id": 9, "category_id": 17, "bbox": [1.12, 2.5, 10.0, 2.0], "score": 0.12346},
    ]
    assert all(type(value) is int for r in results for value in (r["image_id"], r["category_id"]))


def test_a_label_missing_from_the_map_keeps_its_own_number() -> None:
    assert to_coco_results([output([[0, 0, 1, 1]], [0.5], [4])], [1], {1: 3})[0]["category_id"] == 4


def test_outputs_and_image_ids_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 model outputs for 1 image ids"):
        to_coco_results([output([[0, 0, 1, 1]], [0.5], [1])] * 2, [1], {1: 1})


def test_no_detections_at_all_give_no_results() -> None:
    assert to_coco_results([output([], [], []), output([], [], [])], [1, 2], {1: 1}) == []
    assert to_coco_results([], [], {1: 1}) == []


class _Dataset:
    classes = ["circle", "square"]
    label_to_category = {1: 1, 2: 2}

    def coco_api(self):
        from pycocotools.coco import COCO

        api = COCO()
        api.dataset = {
            "images": [{"id": i, "width": 100, "height": 100} for i in (1, 2, 3)],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 20, 40], "area": 800, "iscrowd": 0},
            ],
            "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
        }
        api.createIndex()
        return api


def test_detections_above_the_threshold_are_counted_per_image() -> None:
    outputs = [
        output([[10, 20, 30, 60], [0, 0, 5, 5], [1, 1, 2, 2]], [0.9, 0.5, 0.1], [1, 2, 1]),
        output([], [], []),
        output([[0, 0, 9, 9]], [0.49], [2]),
    ]
    evaluation = score_outputs(outputs, [1, 2, 3], _Dataset(), score_thresh=0.5)
    # Image 1: 0.9 and 0.5 reach the threshold; images 2 and 3 have none that do.
    assert evaluation.detections_per_image == 2 / 3
    assert evaluation.images_without_detections == 2
    assert evaluation.num_images == 3
    assert sorted(evaluation.raw_scores) == pytest.approx([0.1, 0.49, 0.5, 0.9])
    # The one true box is found by the first detection of image 1.
    assert evaluation.metrics["AP50"] == pytest.approx(1.0)
