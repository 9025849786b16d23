"""Previews: one image with its GT boxes (and predictions), computed on the engine's side.

The image the model sees (after the eval transform) is written once as a PNG under
``previews/``, with a JSON sidecar of boxes for the report; the ``PreviewReady`` event
names the PNG so the UI never touches the dataset or the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cockpit.engine.events import PreviewReady
from cockpit.runfiles import write_atomic

MAX_PREDICTIONS = 50
FIRST_SEARCH = 50
"""How many samples the first preview looks through for one with objects."""


def first_with_objects(dataset, limit: int = FIRST_SEARCH) -> int:
    """The first index (among the first ``limit``) whose target has a box; 0 when none has.

    The first preview is what a user sees before anything else: an image with nothing
    to box says nothing about the labels. Reads targets only (no image decode for COCO)."""
    for index in range(min(len(dataset), limit)):
        try:
            if len(dataset.raw_target(index)["boxes"]) > 0:
                return index
        except Exception:  # noqa: BLE001 - an unreadable sample is the pre-flight's to report
            continue
    return 0


def save_png(image: torch.Tensor, path: Path) -> None:
    from PIL import Image

    array = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        array = array[:, :, 0]
    Image.fromarray(array).save(path)


@torch.no_grad()
def make_preview(
    model: torch.nn.Module | None,
    dataset,
    index: int,
    *,
    device: torch.device,
    iteration: int,
    score_thresh: float,
    out_dir: Path,
    split: str = "val",
) -> PreviewReady:
    """Build the event for ``dataset[index]``; predicts only when ``model`` is given."""
    image, target = dataset[index]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{split}-{index}.png"
    if not path.exists():
        save_png(image, path)
    boxes: list[list[float]] = []
    labels: list[int] = []
    scores: list[float] = []
    if model is not None:
        was_training = model.training
        model.eval()
        try:
            output = model([image.to(device)])[0]
        finally:
            model.train(was_training)
        keep = output["scores"] >= score_thresh
        boxes = output["boxes"][keep][:MAX_PREDICTIONS].cpu().tolist()
        labels = output["labels"][keep][:MAX_PREDICTIONS].cpu().tolist()
        scores = output["scores"][keep][:MAX_PREDICTIONS].cpu().tolist()
    event = PreviewReady(
        iter=iteration,
        index=index,
        image_path=str(path),
        image_size=(int(image.shape[-1]), int(image.shape[-2])),
        gt_boxes=target["boxes"].tolist(),
        gt_labels=target["labels"].tolist(),
        boxes=[[round(v, 1) for v in box] for box in boxes],
        labels=[int(v) for v in labels],
        scores=[round(float(v), 4) for v in scores],
    )
    sidecar = {
        "image_path": str(path),
        "split": split,
        "iter": iteration,
        "gt_boxes": event.gt_boxes,
        "gt_labels": event.gt_labels,
        "boxes": event.boxes,
        "labels": event.labels,
        "scores": event.scores,
        "classes": list(dataset.classes),
    }
    write_atomic(out_dir / f"{split}-{index}.json", json.dumps(sidecar))
    return event
