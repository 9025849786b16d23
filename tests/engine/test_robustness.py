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
from cockpit.engine.preview import first_with_objects
from cockpit.engine.trainer import Trainer
from support import SAMPLE, TIMEOUT, Recorder, run_until_finished


def copy_sample(tmp_path, *overrides: str):
    data = tmp_path / "sample"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("runs"))
    base = [
        f"run.output_dir='{tmp_path / 'runs'}'", "run.max_iters=3", "run.log_every=1",
        "eval.every_epochs=0", "optim.warmup_iters=2", "data.num_workers=0",
    ]
    return data, load_config(data / "shapes.toml", base + list(overrides))


def run_to_end(trainer: Trainer) -> tuple[RunFinished, Recorder]:
    events, finished = run_until_finished(trainer, timeout=TIMEOUT)
    return finished, events


def test_val_image_deleted_mid_run_still_ends_with_last_pt(tmp_path):
    _, config = copy_sample(tmp_path)

    class DeleteValImage(Hook):
        def after_step(self, trainer, outcome):
            if outcome.iter == 1:
                # The image the preview shows (the first val image with objects), which the
                # probe also pins.
                self.path = trainer.val_set.image_path(first_with_objects(trainer.val_set))
                os.unlink(self.path)

    deleter = DeleteValImage()
    trainer = Trainer(config, hooks=[deleter, EvalProbeHook(every=1)])
    finished, events = run_to_end(trainer)
    assert finished.outcome == "finished", finished.reason
    assert (trainer.run_dir / rundir.CHECKPOINTS / rundir.LAST).is_file()
    assert any(not e.best for e in events.of(CheckpointSaved))
    assert events.of(EvalResult), [e.message for e in events.of(RunWarning)]
    named = [e for e in events.of(RunWarning) if deleter.path in e.message]
    # The probe names it once; the evaluation and the preview name it too.
    assert any("probe" in e.message for e in named)
    assert any("evaluation skipped" in e.message for e in named)
    assert any("preview" in e.message for e in named)
    assert all("\n" not in e.message for e in named)


def test_a_failing_final_evaluation_does_not_prevent_last_pt(tmp_path, monkeypatch):
    _, config = copy_sample(tmp_path)
    import cockpit.engine.evaluation as evaluation

    def broken(*args, **kwargs):
        raise RuntimeError("pycocotools choked")

    monkeypatch.setattr(evaluation, "evaluate", broken)
    trainer = Trainer(config)
    finished, events = run_to_end(trainer)
    assert finished.outcome == "finished"
    assert (trainer.run_dir / rundir.CHECKPOINTS / rundir.LAST).is_file()
    [warning] = [e for e in events.of(RunWarning) if e.category == "side_job_failed"]
    assert "pycocotools choked" in warning.message and "last.pt" in warning.message


def test_evaluation_uses_batch_1_by_default_and_the_report_says_so(tmp_path, sample_config):
    from cockpit.report.build import build_report

    config = sample_config("run.max_iters=1", "data.batch_size=4")
    assert config.eval.batch_size == 1
    trainer = Trainer(config)
    finished, events = run_to_end(trainer)
    assert finished.outcome == "finished" and events.of(EvalResult)
    assert trainer.val_loader.batch_size == 1
    markdown = build_report(trainer.run_dir).markdown.read_text().replace("\\_", "_")
    assert "eval.batch_size = 1" in markdown

    wider = Trainer(sample_config("run.max_iters=1", "data.batch_size=4", "eval.batch_size=3"))
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
    trainer = Trainer(config, resume=str(path))
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


# -- a full disk -------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 24 MB filesystem when this machine lets us mount a tmpfs (root), else a simulated one.

    Simulated: the free-space query reports 24 MB minus what the folder holds, and writes
    past that fail with ENOSPC, as a real full disk does.
    """
    import errno
    import subprocess

    from cockpit.engine import checkpoint as ckpt

    folder = tmp_path / "small"
    folder.mkdir()
    size = 24 * 1024 * 1024
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
    except OSError:  # no mount command at all
        mounted = False
    if os.environ.get("COCKPIT_TEST_SIMULATE_DISK") and mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        mounted = False
    if not mounted:
        def used() -> int:
            return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

        monkeypatch.setattr(ckpt, "free_bytes", lambda _: size - used())
        real_save = ckpt.torch.save

        def save(state, handle, *args, **kwargs):
            if ckpt.tensor_bytes(state) > size - used():
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_save(state, handle, *args, **kwargs)

        monkeypatch.setattr(ckpt.torch, "save", save)
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_disk_full_pauses_the_cockpit_and_keeps_the_previous_checkpoint(small_disk, sample_config):
    from cockpit.engine.commands import Resume
    from cockpit.engine.events import FlagRaised, RunError, RunState, StateChanged

    filler = small_disk / "filler.bin"

    class SaveThenFill(Hook):
        def after_step(self, trainer, outcome):
            if outcome.iter == 2:
                assert trainer.save_checkpoint("before the disk fills")
                filler.write_bytes(b"\0" * (8 * 1024 * 1024))
            if outcome.iter == 3:
                trainer.save_checkpoint("after the disk filled")

    config = sample_config("run.max_iters=5", "data.val=''", f"run.output_dir='{small_disk}'")
    trainer = Trainer(config, hooks=[SaveThenFill()])
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    paused = events.wait_for(lambda e: isinstance(e, StateChanged) and e.state == RunState.PAUSED)
    last = trainer.run_dir / rundir.CHECKPOINTS / rundir.LAST
    assert "no space left on device writing checkpoints/last.pt (needs ~" in paused.reason
    assert "MB free" in paused.reason
    [error] = events.of(RunError)
    assert error.summary == paused.reason and "\n" not in error.summary
    assert [e.iter for e in events.of(CheckpointSaved)] == [2]
    import torch

    assert torch.load(last, weights_only=True)["iteration"] == 2, "the previous checkpoint is intact"
    assert not list(last.parent.glob(".*.tmp")), "no temporary file left behind"
    # Warned in the checklist before the first save.
    assert any(e.rule == "disk_space" and e.status == "FLAGGED" for e in events.of(FlagRaised))
    filler.unlink()
    trainer.send(Resume())
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert finished.outcome == "finished"
    assert torch.load(last, weights_only=True)["iteration"] == 5


def test_disk_full_stops_a_headless_run_without_touching_the_previous_checkpoint(small_disk, sample_config):
    import torch

    class SaveThenFill(Hook):
        def after_step(self, trainer, outcome):
            if outcome.iter == 2:
                assert trainer.save_checkpoint("before the disk fills")
                (small_disk / "filler.bin").write_bytes(b"\0" * (8 * 1024 * 1024))

    config = sample_config("run.max_iters=4", "data.val=''", f"run.output_dir='{small_disk}'")
    trainer = Trainer(config, headless=True, hooks=[SaveThenFill()])
    finished, events = run_to_end(trainer)
    assert finished.outcome == "failed"
    assert finished.reason.startswith("no space left on device writing checkpoints/last.pt")
    last = trainer.run_dir / rundir.CHECKPOINTS / rundir.LAST
    assert torch.load(last, weights_only=True)["iteration"] == 2


def test_enospc_while_writing_is_one_line_and_leaves_the_old_file(tmp_path, monkeypatch):
    import errno

    import torch

    from cockpit.engine import checkpoint as ckpt

    path = tmp_path / "checkpoints" / "last.pt"
    ckpt.save_atomic({"model": {"w": torch.ones(4)}}, path)

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(ckpt.torch, "save", full)
    monkeypatch.setattr(ckpt, "free_bytes", lambda _: 10 * ckpt.MB)
    monkeypatch.setattr(ckpt, "SLACK_BYTES", 0)
    # The free-space check passes, the write fails: with the disk still reporting room, it
    # is a write error; with the space gone, it is named as a full disk.
    with pytest.raises(ckpt.CheckpointError, match="cannot write .*unexpected pos"):
        ckpt.save_atomic({"model": {"w": torch.ones(4)}}, path)
    answers = iter([10 * ckpt.MB, 0])  # room before the write, none after it failed
    monkeypatch.setattr(ckpt, "free_bytes", lambda _: next(answers))
    monkeypatch.setattr(ckpt.torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    with pytest.raises(ckpt.DiskFullError, match=r"no space left on device writing checkpoints/last.pt"):
        ckpt.save_atomic({"model": {"w": torch.ones(4)}}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_a_checkpoint_holding_an_arbitrary_object_is_refused_in_one_line(tmp_path):
    import fractions

    import torch

    from cockpit.engine import checkpoint as ckpt

    path = tmp_path / "odd.pth"
    torch.save({"model": {"w": torch.ones(2)}, "epoch": 0, "args": fractions.Fraction(1, 3)}, path)
    with pytest.raises(ckpt.CheckpointError) as caught:
        ckpt.load(path)
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message
    assert "fractions.Fraction" in message and "does not unpickle" in message
