"""Faults never kill the run: unreadable samples, CUDA OOM, non-finite losses, hook bugs."""

from __future__ import annotations

import math
import shutil

import torch

from cockpit.config import load_config
from cockpit.engine.commands import RewindSkip
from cockpit.engine.events import (
    FaultCause,
    Outcome,
    CheckpointSaved,
    CommandAck,
    PreviewReady,
    RunError,
    RunFinished,
    RunState,
    RunWarning,
    StateChanged,
    StepMetrics,
)
from cockpit.engine.faults import Injection, parse_injection
from cockpit.engine.hooks import Hook
from cockpit.engine.trainer import Trainer
from support import SAMPLE, Recorder


def start(config, **kwargs) -> tuple[Trainer, Recorder]:
    trainer = Trainer(config, **kwargs)
    recorder = Recorder()
    trainer.subscribe(recorder)
    trainer.start()
    return trainer, recorder


def finish(trainer: Trainer, events: Recorder) -> RunFinished:
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    return finished


def test_parse_injection_rejects_bad_specs():
    assert parse_injection("oom@3") == Injection("oom", 3)
    for bad in ("oom", "boom@3", "nan@x", "nan@0"):
        try:
            parse_injection(bad)
        except ValueError as error:
            assert bad in str(error)
        else:
            raise AssertionError(f"{bad} accepted")


def test_unreadable_image_mid_run_is_skipped_and_named(tmp_path, sample_config):
    data = tmp_path / "sample"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("runs"))
    config = load_config(
        data / "shapes.toml",
        [f"run.output_dir='{tmp_path / 'runs'}'", "run.max_iters=2", "run.log_every=1", "eval.every_epochs=0", "data.num_workers=0"],
    )

    class BreakFiles(Hook):
        """Corrupts and deletes images after the datasets were built, as happens mid-run."""

        def before_train(self, trainer):
            first_two = trainer.sampler.order()[:2]
            self.paths = [trainer.train_set.image_path(i) for i in first_two]
            open(self.paths[0], "wb").write(b"not a png")
            import os

            os.unlink(self.paths[1])

    breaker = BreakFiles()
    trainer, events = start(config, hooks=[breaker])
    finished = finish(trainer, events)
    assert finished.outcome is Outcome.FINISHED and finished.iter == 2
    skipped = [e for e in events.of(RunWarning) if e.category == "skipped_sample"]
    assert sorted(str(e.details["path"]) for e in skipped) == sorted(str(p) for p in breaker.paths)
    assert all(e.details["error"] for e in skipped)


def test_injected_oom_is_recovered_by_halving_the_micro_batch(sample_config):
    trainer, events = start(sample_config("run.max_iters=4"), injections=[Injection("oom", 2)])
    finished = finish(trainer, events)
    assert finished.outcome is Outcome.FINISHED and finished.iter == 4
    retries = [e for e in events.of(RunWarning) if e.category == "oom_retry"]
    assert len(retries) == 1 and retries[0].iter == 2
    assert retries[0].details["new_accumulation"] == 2
    assert trainer.accumulation == 2
    assert [e.iter for e in events.of(StepMetrics)] == [1, 2, 3, 4]


def test_headless_nan_is_rewound_with_lower_lr_and_never_checkpointed(sample_config):
    config = sample_config("run.max_iters=4", "optim.warmup_iters=0")
    trainer, events = start(config, headless=True, injections=[Injection("nan", 2)])
    finished = finish(trainer, events)
    assert finished.outcome is Outcome.FINISHED
    rewinds = [e for e in events.of(RunWarning) if e.category == "nan_rewind"]
    assert len(rewinds) == 1
    assert trainer.lr == config.optim.lr * 0.1
    for saved in events.of(CheckpointSaved):
        state = torch.load(saved.path, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_interactive_nan_pauses_and_waits_for_the_user(sample_config):
    config = sample_config("run.max_iters=4", "optim.warmup_iters=0")
    trainer, events = start(config, headless=False, injections=[Injection("nan", 2)])
    error = events.wait_for(lambda e: isinstance(e, RunError))
    assert not error.fatal and "non-finite" in error.summary and "loss_classifier" in error.summary
    assert error.cause is FaultCause.NONFINITE
    events.wait_for(lambda e: isinstance(e, StateChanged) and e.state is RunState.PAUSED)
    assert trainer.iteration == 2
    # The culprit batch's first image is shown in the preview (a train image, GT only).
    culprit = events.wait_for(lambda e: isinstance(e, PreviewReady) and "train-" in (e.image_path or ""))
    assert culprit.boxes == [] and culprit.image_path.endswith(f"train-{culprit.index}.png")
    trainer.send(RewindSkip(lr_factor=0.1))
    finished = finish(trainer, events)
    assert finished.outcome is Outcome.FINISHED and finished.iter == 4
    assert any(e.command == "rewind" and e.ok for e in events.of(CommandAck))
    assert math.isclose(trainer.lr, config.optim.lr * 0.1)


def test_a_failing_hook_pauses_an_interactive_run_and_stops_a_headless_one(sample_config):
    class Broken(Hook):
        def after_step(self, trainer, outcome):
            if outcome.iter == 2:
                raise ValueError("hook bug")

    trainer, events = start(sample_config("run.max_iters=4"), hooks=[Broken()], headless=True)
    finished = finish(trainer, events)
    assert finished.outcome is Outcome.FAILED and "hook bug" in finished.reason
    assert any(isinstance(e, CheckpointSaved) for e in events.events), "headless failure keeps the last good state"

    trainer, events = start(sample_config("run.max_iters=4"), hooks=[Broken()], headless=False)
    error = events.wait_for(lambda e: isinstance(e, RunError))
    assert "hook bug" in error.summary and "ValueError" in error.traceback
    events.wait_for(lambda e: isinstance(e, StateChanged) and e.state is RunState.PAUSED)
    trainer.close()
    assert trainer.state is RunState.FINISHED
