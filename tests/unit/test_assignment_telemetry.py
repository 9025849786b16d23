"""Label-assignment telemetry: the counts ``take`` makes from what the recording pieces kept."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

from cockpit.engine.assignment import (
    COUNTS,
    AssignmentTelemetry,
    RecordingMatcher,
    RecordingSampler,
    RecordingSimilarity,
    record_accuracy,
)


def counts(telemetry: AssignmentTelemetry) -> tuple[dict[str, float], dict[str, float]]:
    vector, host = telemetry.take(torch.device("cpu"))
    assert vector.dtype == torch.float32 and vector.shape == (len(COUNTS),)
    return dict(zip(COUNTS, vector.tolist())), host


def test_an_empty_step_counts_zero():
    values, host = counts(AssignmentTelemetry())
    assert values == {name: 0.0 for name in COUNTS}
    assert host == {"images": 0.0, "gt": 0.0}


def test_counts_what_torchvisions_matcher_sampler_and_heads_did():
    telemetry = AssignmentTelemetry()
    # Two images: 2 GT boxes and 1 GT box; anchors chosen so the IoUs are known.
    gt = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 24.0, 29.0]]), torch.tensor([[0.0, 0.0, 16.0, 4.0]])]
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0], [0.0, 0.0, 16.0, 8.0]])
    similarity = RecordingSimilarity(box_iou, telemetry)
    matcher = RecordingMatcher(0.7, 0.3, True, telemetry)
    for boxes in gt:
        matcher(similarity(boxes, anchors))
    sampler = RecordingSampler(4, 0.5, telemetry, "rpn")
    torch.manual_seed(0)
    positive, negative = sampler([torch.tensor([1, 0, -1, 0, 1, 0]), torch.tensor([0, 0, 0, 1, -1, 0])])
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 1, 0])  # predicted 0, 1, 0, 2, 0
    record_accuracy(telemetry, logits, labels)

    values, host = counts(telemetry)
    assert host == {"images": 2.0, "gt": 3.0}
    assert values["rpn_pos"] == sum(int(p.sum()) for p in positive) == 3
    assert values["rpn_neg"] == sum(int(n.sum()) for n in negative)
    # Best IoUs: 1.0 (exact anchor), 36/400 = 0.09 (inside the big anchor), 64/128 = 0.5.
    assert values["gt_no_anchor"] == 2
    assert abs(values["gt_size"] - (10.0 + 6.0 + 8.0)) < 1e-5  # sqrt(w * h) of each box
    assert values["cls_correct"] == 3  # RoIs 0, 1 and 4
    assert values["fg_correct"] == 1  # RoI 1
    assert values["fg_as_bg"] == 1  # RoI 2
    assert values["roi_fg"] == values["roi_bg"] == 0


def test_micro_batches_add_up_and_a_threshold_change_between_them_counts_each_at_its_own():
    telemetry = AssignmentTelemetry()
    telemetry.add_best_iou(torch.tensor([0.5, 0.9]), 0.7)  # one below 0.7
    telemetry.add_best_iou(torch.tensor([0.5, 0.9]), 0.4)  # none below 0.4
    telemetry.add_sampled("roi_fg", [torch.tensor([1, 0, 1], dtype=torch.uint8)])
    telemetry.add_sampled("roi_fg", [torch.tensor([1, 1], dtype=torch.uint8)])
    values, _ = counts(telemetry)
    assert values["gt_no_anchor"] == 1
    assert values["roi_fg"] == 4


def test_take_clears_and_a_paused_telemetry_records_nothing():
    telemetry = AssignmentTelemetry()
    telemetry.add_sampled("rpn_pos", [torch.ones(3, dtype=torch.uint8)])
    telemetry.add_host("images", 1.0)
    assert counts(telemetry)[0]["rpn_pos"] == 3
    with telemetry.paused():
        telemetry.add_sampled("rpn_pos", [torch.ones(3, dtype=torch.uint8)])
        telemetry.add_gt_boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0]]))
        telemetry.add_host("images", 1.0)
    values, host = counts(telemetry)
    assert values["rpn_pos"] == 0 and values["gt_size"] == 0
    assert host["images"] == 0
