"""Whole runs with a classic detector-training bug: the diagnostics must catch each one.

These are the issue's acceptance runs, small enough for CPU: an absurd learning rate, a
dataset whose objects are all labelled 0, and a score threshold above every detection.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from cockpit.engine.events import (
    CheckState,
    CheckpointSaved,
    FlagRaised,
    LRChanged,
    LRSource,
    Outcome,
    RunFinished,
    RunWarning,
)
from cockpit.diagnostics.hook import DiagnosticsHook
from cockpit.engine.faults import Injection
from cockpit.engine.trainer import Trainer
from cockpit.config import ConfigError
from support import SAMPLE, Recorder, run_until_finished


def run_to_end(config, **kwargs) -> tuple[Trainer, Recorder, RunFinished]:
    trainer = Trainer(config, hooks=[DiagnosticsHook()], **kwargs)
    return (trainer, *run_until_finished(trainer))


def flagged(events: Recorder, rule: str) -> list[FlagRaised]:
    return [e for e in events.of(FlagRaised) if e.rule == rule and e.status is CheckState.FLAGGED]


def test_an_absurd_lr_is_refused_before_the_run_starts(sample_config):
    # Past the bound (0 < lr <= 10) the config itself says why; nothing is trained.
    with pytest.raises(ConfigError, match=r"optim.lr: .*less than or equal to 10"):
        sample_config("optim.lr=1000.0")


def test_the_largest_accepted_lr_diverges_is_caught_and_rewound_with_a_lower_lr(sample_config):
    config = sample_config("run.max_iters=12", "optim.lr=10.0", "optim.warmup_iters=0")
    _, events, finished = run_to_end(config, headless=True)

    assert flagged(events, "nonfinite_loss"), "the non-finite loss must be flagged"
    recovery = [e.lr for e in events.of(LRChanged) if e.source is LRSource.RECOVERY]
    assert recovery and recovery[0] == pytest.approx(1.0)
    assert finished.outcome is Outcome.FINISHED and finished.iter == 12


def test_a_loss_that_stays_non_finite_is_rewound_with_compounding_lr_then_stops_with_a_good_checkpoint(sample_config):
    config = sample_config("run.max_iters=30", "optim.lr=10.0", "optim.warmup_iters=0")
    # A NaN at every iteration from 3 on: rewinds cannot cure it.
    injections = [Injection("nan", it) for it in range(3, 31)]
    _, events, finished = run_to_end(config, headless=True, injections=injections)

    assert flagged(events, "nonfinite_loss"), "the non-finite loss must be flagged"
    rewinds = [e for e in events.of(RunWarning) if e.category == "nan_rewind"]
    assert len(rewinds) == 3
    # Each automatic rewind lowers the LR again: x0.1, x0.01, x0.001 of the original.
    recovery = [e.lr for e in events.of(LRChanged) if e.source is LRSource.RECOVERY]
    assert [round(lr, 6) for lr in recovery] == [1.0, 0.1, 0.01]
    assert finished.outcome is Outcome.FAILED
    assert "non-finite after 3 rewinds" in finished.reason
    saved = events.of(CheckpointSaved)
    assert saved, "the failure keeps the last good state"
    for event in saved:
        state = torch.load(event.path, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


ZERO_LABELS = textwrap.dedent(
    '''
    """The sample shapes with every object labelled 0 (background): the classic label bug."""
    import json
    from pathlib import Path

    import torch
    from PIL import Image


    class ZeroLabels(torch.utils.data.Dataset):
        def __init__(self, annotations, images):
            data = json.loads(Path(annotations).read_text())
            boxes = {}
            for ann in data["annotations"]:
                x, y, w, h = ann["bbox"]
                boxes.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
            self.images = Path(images)
            self.items = [(image["file_name"], boxes.get(image["id"], [])) for image in data["images"]]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, index):
            name, boxes = self.items[index]
            image = Image.open(self.images / name).convert("RGB")
            return image, {"boxes": boxes, "labels": [0] * len(boxes)}
    '''
)


def zero_label_config(tmp_path) -> str:
    (tmp_path / "zero_labels.py").write_text(ZERO_LABELS)
    shapes = SAMPLE / "shapes"
    (tmp_path / "zero.toml").write_text(
        textwrap.dedent(
            f"""
            [run]
            name = "zero"
            output_dir = "{tmp_path / 'runs'}"
            max_iters = 50
            log_every = 1
            [data]
            format = "module"
            classes = ["circle", "square"]
            train = "zero_labels:ZeroLabels"
            val = "zero_labels:ZeroLabels"
            train_args = {{ annotations = "{shapes / 'train.json'}", images = "{shapes / 'train/PNGImages'}" }}
            val_args = {{ annotations = "{shapes / 'val.json'}", images = "{shapes / 'val/PNGImages'}" }}
            batch_size = 4
            num_workers = 0
            [model]
            arch = "tiny"
            weights = "none"
            [eval]
            every_epochs = 0
            """
        )
    )
    return str(tmp_path / "zero.toml")


def cockpit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args], capture_output=True, text=True, timeout=600)


def test_label_zero_dataset_fails_check_and_is_flagged_no_foreground_within_50_iterations(tmp_path):
    config = zero_label_config(tmp_path)
    check = cockpit("check", config)
    assert check.returncode == 1
    assert "Label 0 used for an object" in check.stdout and "your first class must be 1" in check.stdout

    run = cockpit("run", config, "--no-check", "--headless")
    assert run.returncode == 0, run.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    records = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    flat = [r for r in records if r["kind"] == "flag" and r["rule"] == "flat_loss" and r["status"] == "FLAGGED"]
    assert flat, "all-background labels must be flagged"
    assert flat[0]["iter"] <= 50
    assert "no foreground matched" in flat[0]["likely_cause"]
    assert "first class must be 1" in flat[0]["fix"]
    assert "FLAGGED" in run.stdout and "Loss flat, no foreground matched" in run.stdout


def test_score_threshold_above_every_detection_is_flagged_with_the_score_histogram(sample_config):
    # 60 iterations give the tiny model real detections (AP50 around 0.3 over raw scores),
    # none of which reaches a 0.999 threshold.
    config = sample_config("run.max_iters=60", "optim.warmup_iters=10", "eval.score_thresh=0.999")
    _, events, finished = run_to_end(config, headless=True)
    assert finished.outcome is Outcome.FINISHED

    (flag,) = flagged(events, "no_val_detections")
    histogram = flag.data["score_histogram"]
    assert sum(histogram["counts"]) == flag.data["num_scores"] > 0
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1
    assert flag.data["max_score"] < 0.999
    assert "scores:" in flag.evidence and "eval.score_thresh = 0.999 is above every score" in flag.likely_cause
    suggested = math.floor(flag.data["max_score"] * 20) / 20
    assert f"{max(0.05, suggested):.2f}" in flag.fix
