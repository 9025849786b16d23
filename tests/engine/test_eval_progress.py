"""A COCO evaluation reports how many val images are done, through the engine's events."""

from __future__ import annotations

from pathlib import Path

import torch

from cockpit.config import load_config
from cockpit.data.loader import build_dataset, build_loader
from cockpit.engine.evaluation import evaluate
from cockpit.engine.events import Progress, ProgressTask
from cockpit.engine.model import build_model

REPO = Path(__file__).resolve().parents[2]


def test_evaluation_counts_val_images_to_the_end(monkeypatch) -> None:
    from cockpit.engine import evaluation

    monkeypatch.setattr(evaluation, "PROGRESS_INTERVAL", 0.0)  # an event per batch
    config = load_config(REPO / "sample_data" / "shapes.toml", ["model.arch=tiny", "model.weights=none", "data.batch_size=4"])
    dataset = build_dataset(config, "val", train=False)
    loader = build_loader(dataset, config, train=False, device_is_cuda=False)
    events: list[Progress] = []
    evaluate(build_model(config), loader, dataset, torch.device("cpu"), 0.05, progress=events.append)
    assert events and all(e.task is ProgressTask.EVALUATION and e.total == len(dataset) for e in events)
    assert events[0].done == 0 and events[-1].done == len(dataset) and events[-1].finished
    # One event per batch of 4 as the images are read, then the end.
    steps = [e.done for e in events]
    assert steps == sorted(steps)
    assert sorted(set(steps)) == sorted(set(range(0, len(dataset), 4)) | {len(dataset)})
