"""A run folder belongs to one live process; refused resumes touch nothing; kill-and-resume
leaves one monotonic history and no debris (issue 14, items 3 and 4)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cockpit.engine.checkpoint import CheckpointError
from cockpit.engine.events import RunFinished
from cockpit.engine.trainer import Trainer
from cockpit.runfiles import RunBusyError, layout
from support import REPO, SAMPLE, Recorder

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def finished_run(config) -> Path:
    trainer = Trainer(config)
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    return trainer.run_dir


def test_a_resume_with_another_arch_is_refused_and_touches_nothing(sample_config):
    run_dir = finished_run(sample_config("run.max_iters=2"))
    before = tree_digest(run_dir)
    other = sample_config("run.max_iters=4", "model.arch='fasterrcnn_mobilenet_v3_large_320_fpn'")
    with pytest.raises(CheckpointError, match="model.arch = 'tiny'"):
        Trainer(other, resume=str(run_dir))
    other_classes = sample_config("run.max_iters=4", "data.classes=['circle', 'square', 'star']")
    with pytest.raises(CheckpointError, match="classes"):
        Trainer(other_classes, resume="auto")
    assert tree_digest(run_dir) == before
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]  # no new folder either


def test_a_live_run_refuses_a_second_owner_naming_its_pid(sample_config):
    config = sample_config("run.max_iters=2")
    run_dir = finished_run(config)
    owner = Trainer(sample_config("run.max_iters=4"), resume="auto")  # holds the folder, not started
    try:
        before = tree_digest(run_dir)
        with pytest.raises(RunBusyError, match=f"in use by pid {os.getpid()}"):
            Trainer(sample_config("run.max_iters=4"), resume="auto")
        # The same through the CLI, a second process: one line naming the owner, nothing touched.
        for extra in ([], ["--detach"]):
            result = subprocess.run(
                [sys.executable, "-m", "cockpit", "run", str(SAMPLE / "shapes.toml"), "--headless", "--no-check",
                 "--resume", str(run_dir), "--set", f"run.output_dir='{run_dir.parent}'", *extra],
                cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
            )
            assert result.returncode != 0
            message = result.stderr.strip().splitlines()
            assert len(message) == 1 and f"in use by pid {os.getpid()}" in message[0], result.stderr
            assert "Traceback" not in result.stderr
        assert tree_digest(run_dir) == before
    finally:
        owner.close()
    # Released with the owner: the folder can be resumed again.
    Trainer(sample_config("run.max_iters=4"), resume="auto").close()


def _train_until(run_dir_parent: Path, iteration: int | None, *extra: str) -> subprocess.Popen:
    """Start a headless run; with ``iteration``, SIGKILL it once it has logged that iteration."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "run", str(SAMPLE / "shapes.toml"), "--headless", "--no-check",
         "--set", f"run.output_dir='{run_dir_parent}'", "--set", "run.epochs=2", "--set", "data.batch_size=12",
         "--set", "run.log_every=1", "--set", "eval.every_epochs=0", "--set", "optim.warmup_iters=2", *extra],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in process.stdout:
            if iteration is not None and line.startswith(f"it {iteration}/"):
                # The printer and the writer are separate listeners: kill once the record is on disk.
                _wait_for_record(run_dir_parent, iteration)
                process.send_signal(signal.SIGKILL)
                break
        process.communicate(timeout=600)
    finally:
        process.kill()
    return process


def _wait_for_record(run_dir_parent: Path, iteration: int) -> None:
    for _ in range(600):  # bounded: at most ~60 s, far more than one flushed line needs
        for metrics in run_dir_parent.glob(f"*/{layout.METRICS}"):
            if f'"iter":{iteration},' in metrics.read_text():
                return
        time.sleep(0.1)
    raise AssertionError(f"iteration {iteration} never reached metrics.jsonl")


def test_sigkill_loop_leaves_one_monotonic_history_and_no_temp_files(tmp_path):
    # 10 iterations per epoch: last.pt is written at 10; each kill comes two iterations later.
    first = _train_until(tmp_path, 12)
    assert first.returncode == -signal.SIGKILL
    (run_dir,) = list(tmp_path.iterdir())
    dead_temp = run_dir / layout.CHECKPOINTS / ".last.pt.k1ll3d.tmp"  # a writer killed mid-save
    dead_temp.write_bytes(b"\0" * 4096)
    second = _train_until(tmp_path, 12, "--resume", "auto")
    assert second.returncode == -signal.SIGKILL
    third = _train_until(tmp_path, None, "--resume", "auto")
    assert third.returncode == 0
    records = [json.loads(line) for line in (run_dir / layout.METRICS).read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "train"] == list(range(1, 21))
    abandoned = [json.loads(line)["iter"] for line in (run_dir / layout.ABANDONED).read_text().splitlines()]
    # Each killed process logged 11 and 12 (perhaps 13 before the kill landed) past the checkpoint at 10.
    assert abandoned[:2] == [11, 12] and abandoned.count(11) == abandoned.count(12) == 2
    assert set(abandoned) <= {11, 12, 13}
    assert not list(run_dir.rglob("*.tmp"))
