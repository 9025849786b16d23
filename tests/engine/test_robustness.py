"""Never lose a run (#14): side jobs, disk full, foreign checkpoints, empty data.

Each test reproduces a fault and checks the run ends paused or stopped with its last good
checkpoint and one line saying why.
"""

from __future__ import annotations

import os
import shutil

import pytest

from cockpit.config import load_config
from cockpit.engine import rundir
from cockpit.engine.builtin_hooks import EvalProbeHook
from cockpit.engine.events import CheckpointSaved, EvalResult, RunFinished, RunWarning
from cockpit.engine.hooks import Hook
from cockpit.engine.trainer import Trainer
from support import SAMPLE, Recorder


def copy_sample(tmp_path, *overrides: str):
    data = tmp_path / "sample"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("runs"))
    base = [
        f"run.output_dir='{tmp_path / 'runs'}'", "run.max_iters=3", "run.log_every=1",
        "eval.every_epochs=0", "optim.warmup_iters=2", "data.num_workers=0",
    ]
    return data, load_config(data / "shapes.toml", base + list(overrides))


def run_to_end(trainer: Trainer) -> tuple[RunFinished, Recorder]:
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    return finished, events


def test_val_image_deleted_mid_run_still_ends_with_last_pt(tmp_path):
    _, config = copy_sample(tmp_path)

    class DeleteValImage(Hook):
        def after_step(self, trainer, outcome):
            if outcome.iter == 1:
                self.path = trainer.val_set.image_path(0)
                os.unlink(self.path)

    deleter = DeleteValImage()
    trainer = Trainer(config, diagnostics=False, hooks=[deleter, EvalProbeHook(every=1)])
    finished, events = run_to_end(trainer)
    assert finished.outcome == "finished", finished.reason
    assert (trainer.run_dir / rundir.CHECKPOINTS / rundir.LAST).is_file()
    assert any(not e.best for e in events.of(CheckpointSaved))
    assert events.of(EvalResult), "the final evaluation ran on the readable images"
    named = [e for e in events.of(RunWarning) if deleter.path in e.message]
    # The probe names it once; the evaluation's loader and the preview name it too.
    assert any("probe" in e.message for e in named)
    assert any("preview" in e.message for e in named)
    assert all("\n" not in e.message for e in named)


def test_a_failing_final_evaluation_does_not_prevent_last_pt(tmp_path, monkeypatch):
    _, config = copy_sample(tmp_path)
    import cockpit.engine.evaluation as evaluation

    def broken(*args, **kwargs):
        raise RuntimeError("pycocotools choked")

    monkeypatch.setattr(evaluation, "evaluate", broken)
    trainer = Trainer(config, diagnostics=False)
    finished, events = run_to_end(trainer)
    assert finished.outcome == "finished"
    assert (trainer.run_dir / rundir.CHECKPOINTS / rundir.LAST).is_file()
    [warning] = [e for e in events.of(RunWarning) if e.category == "side_job_failed"]
    assert "pycocotools choked" in warning.message and "last.pt" in warning.message


def test_evaluation_uses_batch_1_by_default_and_the_report_says_so(tmp_path, sample_config):
    from cockpit.report.build import build_report

    config = sample_config("run.max_iters=1", "data.batch_size=4")
    assert config.eval.batch_size == 1
    trainer = Trainer(config, diagnostics=False)
    finished, events = run_to_end(trainer)
    assert finished.outcome == "finished" and events.of(EvalResult)
    assert trainer.val_loader.batch_size == 1
    markdown = build_report(trainer.run_dir).markdown.read_text().replace("\\_", "_")
    assert "eval.batch_size = 1" in markdown

    wider = Trainer(sample_config("run.max_iters=1", "data.batch_size=4", "eval.batch_size=3"), diagnostics=False)
    run_to_end(wider)
    assert wider.val_loader.batch_size == 3
    assert "eval.batch_size = 3" in build_report(wider.run_dir).markdown.read_text().replace("\\_", "_")


def write_references_checkpoint(config, path, *, finished_epoch: int, milestones=(1, 3), base_lr=0.01):
    """A checkpoint as torchvision's references/detection/train.py writes it."""
    import argparse

    import torch

    from cockpit.engine.model import build_model

    model = build_model(config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=base_lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=0.1)
    for _ in range(finished_epoch + 1):
        optimizer.step()
        scheduler.step()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": scheduler.state_dict(),
            "args": argparse.Namespace(lr=base_lr, epochs=26, data_path="/data/coco", lr_steps=list(milestones)),
            "epoch": finished_epoch,
        },
        path,
    )
    return scheduler.get_last_lr()[0]


def test_resume_from_a_torchvision_references_checkpoint_continues_its_schedule(tmp_path, sample_config):
    from cockpit.engine.events import RunStarted, StepMetrics

    config = sample_config("run.max_iters=62", "optim.warmup_iters=100")
    path = tmp_path / "model_1.pth"
    their_lr = write_references_checkpoint(config, path, finished_epoch=1)
    trainer = Trainer(config, diagnostics=False, resume=str(path))
    finished, events = run_to_end(trainer)
    assert finished.outcome == "finished", finished.reason
    [started] = events.of(RunStarted)
    # Epoch 1 (0-based) finished there: epoch 3 (1-based) here, 30 iterations per epoch.
    assert started.start_iter == 60 and started.start_epoch == 3
    steps = events.of(StepMetrics)
    # MultiStepLR at milestones (1, 3): one decay by epoch 2, and no warm-up restarted.
    assert steps[0].lr == pytest.approx(their_lr) == pytest.approx(0.001)
    notes = [e.message for e in events.of(RunWarning) if e.category == "foreign_checkpoint"]
    assert any("MultiStepLR" in n and "no warm-up" in n for n in notes)


def test_garbage_resume_file_is_one_line_and_leaves_no_run_folder(tmp_path):
    import subprocess
    import sys

    garbage = tmp_path / "model.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    out = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "cockpit", "run", str(SAMPLE / "shapes.toml"), "--headless", "--no-check",
         "--resume", str(garbage), "--set", f"run.output_dir='{out}'"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read checkpoint" in lines[0] and "\x1b" not in lines[0], result.stderr
    assert not out.exists() or not any(out.iterdir())
