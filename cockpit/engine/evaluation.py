"""COCO bbox evaluation with pycocotools on the val split.

Predictions are mapped back to the dataset's own category ids, so the numbers are the
ones ``pycocotools`` would give on the original annotation file. Also counts detections
above ``eval.score_thresh`` and keeps every raw score for the "zero val detections" rule.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from cockpit.engine.events import ProgressTask
from cockpit.progress import ProgressMeter, ProgressSink

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
SCORE_BINS = 10
PROGRESS_INTERVAL = 1.0
"""Seconds between an evaluation's progress events (each one is a line of events.jsonl)."""


@dataclass
class Evaluation:
    """Everything one evaluation produced."""

    metrics: dict[str, float]
    per_class: dict[str, float]
    results: list[dict[str, Any]]
    """COCO results JSON: ``{"image_id", "category_id", "bbox" (xywh), "score"}``."""
    detections_per_image: float
    images_without_detections: int
    num_images: int
    score_histogram: list[int]
    raw_scores: list[float] = field(default_factory=list)
    sample_boxes: list[dict[str, Any]] = field(default_factory=list)
    """A few images' predicted boxes and sizes (for the "boxes in the corner" rule)."""
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Val images that could not be read, ``(path, error)``: left out of the numbers."""


def to_coco_results(outputs: Iterable[dict], image_ids: Iterable[int], label_to_category: dict[int, int]) -> list[dict]:
    """Model outputs (xyxy, labels 1..K) -> COCO results (xywh, dataset category ids).

    Converted in bulk (one concatenation, numpy arithmetic and rounding) rather than box
    by box: a val set of thousands of images has tens of thousands of detections, and
    this runs before pycocotools on every evaluation.
    """
    outputs = list(outputs)
    image_ids = [int(image_id) for image_id in image_ids]
    if len(outputs) != len(image_ids):
        raise ValueError(f"{len(outputs)} model outputs for {len(image_ids)} image ids")
    counts = [len(output["scores"]) for output in outputs]
    if not sum(counts):
        return []

    def gathered(key: str, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.cat([output[key].detach().reshape(shape) for output in outputs]).cpu()

    boxes = gathered("boxes", (-1, 4)).to(torch.float64).numpy()
    xywh = np.round(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1), 2).tolist()
    scores = np.round(gathered("scores", (-1,)).to(torch.float64).numpy(), 5).tolist()
    labels = gathered("labels", (-1,)).tolist()
    ids = np.repeat(np.asarray(image_ids, dtype=np.int64), counts).tolist()
    category = {label: int(label_to_category.get(label, label)) for label in set(labels)}
    return [
        {"image_id": image_id, "category_id": category[label], "bbox": box, "score": score}
        for image_id, label, box, score in zip(ids, labels, xywh, scores)
    ]


def coco_metrics(coco_gt, results: list[dict], image_ids: list[int], category_names: dict[int, str]) -> tuple[dict, dict]:
    """Run COCOeval; returns (the 12 standard numbers, per-class AP by class name)."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        zero = {name: 0.0 for name in METRIC_NAMES}
        return zero, {name: 0.0 for name in category_names.values()}
    # pycocotools prints progress on stdout; keep the TUI and the headless log clean.
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.imgIds = sorted(set(image_ids))
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    metrics = {name: float(value) for name, value in zip(METRIC_NAMES, evaluator.stats)}
    precision = evaluator.eval["precision"]  # [IoU, recall, category, area, maxDets]
    per_class = {}
    for k, category_id in enumerate(evaluator.params.catIds):
        if category_id not in category_names:
            continue
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[category_names[category_id]] = float(values.mean()) if values.size else -1.0
    return metrics, per_class


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader, dataset, device: torch.device, score_thresh: float, progress: ProgressSink | None = None
) -> Evaluation:
    """Predict on every val image in eval mode and score with COCOeval; restores train mode.
    ``progress`` hears how many val images are done (thousands take minutes)."""
    started = time.perf_counter()
    meter = ProgressMeter(ProgressTask.EVALUATION, len(dataset), progress, detail="val images", interval=PROGRESS_INTERVAL)
    was_training = model.training
    model.eval()
    outputs_all, ids_all = [], []
    sample_boxes = []
    skipped: list = []
    try:
        for batch in loader:
            images, targets = batch[0], batch[1]
            skipped.extend(getattr(batch, "skipped", ()))
            meter.advance(len(images) + len(getattr(batch, "skipped", ())))
            if not images:  # every image of this batch unreadable (always so at batch size 1)
                continue
            images = [image.to(device, non_blocking=True) for image in images]
            outputs = model(images)
            outputs = [{k: v.detach().cpu() for k, v in out.items()} for out in outputs]
            for image, target, output in zip(images, targets, outputs):
                ids_all.append(int(target["image_id"]))
                outputs_all.append(output)
                if len(sample_boxes) < 16:
                    sample_boxes.append(
                        {"boxes": output["boxes"].tolist(), "size": [int(image.shape[-1]), int(image.shape[-2])]}
                    )
    finally:
        model.train(was_training)
        meter.finish()
    evaluation = score_outputs(outputs_all, ids_all, dataset, score_thresh)
    evaluation.sample_boxes = sample_boxes
    evaluation.skipped = [(sample.path or f"#{sample.index}", sample.message) for sample in skipped]
    evaluation.seconds = time.perf_counter() - started
    return evaluation


def score_outputs(outputs: list[dict], image_ids: list[int], dataset, score_thresh: float) -> Evaluation:
    """Everything after inference: COCO results, COCOeval, the detection counts and scores.

    ``outputs`` are the model's per-image dicts on the CPU (``boxes`` xyxy, ``scores``,
    ``labels`` 1..K); ``dataset`` supplies ``label_to_category``, ``classes`` and
    ``coco_api()``. Kept apart from :func:`evaluate` so its cost can be compared with
    calling pycocotools directly (bench/evaluation.py).
    """
    label_to_category = dataset.label_to_category
    results = to_coco_results(outputs, image_ids, label_to_category)
    names = {label_to_category[label]: name for label, name in zip(range(1, len(dataset.classes) + 1), dataset.classes)}
    metrics, per_class = coco_metrics(dataset.coco_api(), results, image_ids, names)

    scores = np.concatenate([o["scores"].numpy() for o in outputs]) if outputs else np.zeros(0)
    # Detections at or above the threshold per image, from one cumulative count over all
    # scores instead of a tensor comparison per image.
    counts = np.array([len(o["scores"]) for o in outputs], dtype=np.int64)
    ends = np.cumsum(counts)
    counted = np.concatenate([[0], np.cumsum(scores >= score_thresh)])
    above = (counted[ends] - counted[ends - counts]).tolist()
    histogram, _ = np.histogram(scores, bins=SCORE_BINS, range=(0.0, 1.0))
    return Evaluation(
        metrics=metrics,
        per_class=per_class,
        results=results,
        detections_per_image=float(np.mean(above)) if above else 0.0,
        images_without_detections=sum(1 for n in above if n == 0),
        num_images=len(outputs),
        score_histogram=histogram.tolist(),
        raw_scores=scores.tolist(),
    )
