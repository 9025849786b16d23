"""The trainer obeys commands at the next iteration boundary and acknowledges each."""

from __future__ import annotations

import math

import pytest
import torch

from cockpit.engine.commands import EvaluateNow, Pause, Resume, SaveCheckpoint, ScaleLR, SetLR, Stop
from cockpit.engine.events import (
    Outcome,
    CheckpointSaved,
    CommandAck,
    EvalResult,
    LRChanged,
    LRSource,
    RunFinished,
    RunState,
    RunWarning,
    StateChanged,
    StepMetrics,
)
from cockpit.engine.hooks import Hook
from cockpit.engine.trainer import Trainer
from support import Recorder, SendAt


def run(config, *hooks, listeners=(), **kwargs) -> tuple[Trainer, Recorder]:
    trainer = Trainer(config, hooks=list(hooks), **kwargs)
    recorder = Recorder()
    trainer.subscribe(recorder)
    for listener in listeners:
        trainer.subscribe(listener)
    return trainer, recorder


def test_pause_takes_effect_at_the_next_boundary_and_blocks_until_resume(sample_config):
    trainer, events = run(sample_config("run.max_iters=6"), SendAt(2, Pause()))
    trainer.start()
    paused = events.wait_for(lambda e: isinstance(e, StateChanged) and e.state is RunState.PAUSED)
    assert paused.iter == 2
    # Commands are still served while paused; the ack proves the loop looked at the queue
    # again, and the iteration count proves no step ran in between.
    trainer.send(SetLR(0.001))
    ack = events.wait_for(lambda e: isinstance(e, CommandAck) and e.command == "set_lr")
    assert ack.iter == 2 and trainer.iteration == 2
    assert trainer.state is RunState.PAUSED
    trainer.send(Resume())
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert finished.iter == 6 and finished.outcome is Outcome.FINISHED
    assert [e.command for e in events.of(CommandAck) if e.command in ("pause", "resume")] == ["pause", "resume"]
    steps = [e.iter for e in events.of(StepMetrics)]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_set_and_scale_lr_change_the_optimizer_lr(sample_config):
    config = sample_config("run.max_iters=5", "optim.warmup_iters=0")
    trainer, events = run(config, SendAt(1, SetLR(0.004)), SendAt(3, ScaleLR(0.5)))
    trainer.start()
    events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    lr_by_iter = {e.iter: e.lr for e in events.of(StepMetrics)}
    assert lr_by_iter[1] == pytest.approx(config.optim.lr)
    assert lr_by_iter[2] == pytest.approx(0.004)
    assert lr_by_iter[4] == pytest.approx(0.002)
    user_changes = [(e.iter, e.lr) for e in events.of(LRChanged) if e.source is LRSource.USER]
    assert user_changes == [(1, pytest.approx(0.004)), (3, pytest.approx(0.002))]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.002)


def test_stop_jumps_the_queue_and_saves_a_checkpoint(sample_config):
    trainer, events = run(sample_config("run.max_iters=50"), SendAt(2, SaveCheckpoint(), Stop(save=True)))
    trainer.start()
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert finished.outcome is Outcome.STOPPED and finished.iter == 2
    # Stop was sent after SaveCheckpoint yet applied first: the save is refused, not run.
    acks = [(e.command, e.ok) for e in events.of(CommandAck)]
    assert acks == [("save", False), ("stop", True)]
    saved = events.of(CheckpointSaved)
    assert len(saved) == 1 and saved[0].iter == 2
    state = torch.load(saved[0].path, weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "epoch", "iteration", "scaler", "config", "args"} <= set(state)
    assert state["iteration"] == 2


def test_resume_continues_iterations_and_lr(sample_config):
    config = sample_config("run.max_iters=3", "optim.warmup_iters=0")
    first, events = run(config, SendAt(2, SetLR(0.003)))
    first.start()
    events.wait_for(lambda e: isinstance(e, RunFinished))
    first.close()

    resumed_config = sample_config("run.max_iters=6", "optim.warmup_iters=0")
    second, events2 = run(resumed_config, resume=str(first.run_dir))
    second.start()
    events2.wait_for(lambda e: isinstance(e, RunFinished))
    second.close()
    assert second.run_dir == first.run_dir
    steps = events2.of(StepMetrics)
    assert [e.iter for e in steps] == [4, 5, 6]
    assert steps[0].lr == pytest.approx(0.003)
    # Appended, not overwritten: the metrics file holds both runs' iterations.
    lines = (first.run_dir / "metrics.jsonl").read_text().splitlines()
    import json

    iters = [json.loads(line)["iter"] for line in lines if json.loads(line)["kind"] == "train"]
    assert iters == [1, 2, 3, 4, 5, 6]


def test_evaluate_now_returns_the_coco_numbers(sample_config):
    trainer, events = run(sample_config("run.max_iters=4"), SendAt(1, EvaluateNow()))
    trainer.start()
    result = events.wait_for(lambda e: isinstance(e, EvalResult))
    events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert result.iter == 1
    expected = {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}
    assert set(result.metrics) == expected
    assert all(-1.0 <= v <= 1.0 and math.isfinite(v) for v in result.metrics.values())
    assert set(result.per_class) == {"circle", "square"}
    assert result.num_images == 30
    assert trainer.model.training, "evaluation must put the model back in train mode"


def test_a_listener_that_raises_does_not_kill_the_run(sample_config):
    def broken(event):
        raise RuntimeError("listener bug")

    trainer, events = run(sample_config("run.max_iters=3"), listeners=[broken])
    trainer.start()
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert finished.outcome is Outcome.FINISHED and finished.iter == 3
    warnings = [e for e in events.of(RunWarning) if e.category == "listener_error"]
    assert 1 <= len(warnings) <= 3 and "listener bug" in warnings[0].message


def test_same_seed_same_losses(sample_config):
    losses = []
    for _ in range(2):
        trainer, events = run(sample_config("run.max_iters=3"))
        trainer.start()
        events.wait_for(lambda e: isinstance(e, RunFinished))
        trainer.close()
        losses.append([e.loss for e in events.of(StepMetrics)])
    assert losses[0] == losses[1]


def test_eval_probe_reports_detection_scores_to_the_diagnostics(sample_config):
    from cockpit.engine.builtin_hooks import EvalProbeHook

    class Listens(Hook):
        def __init__(self):
            self.probes = []

        def on_probe(self, trainer, facts):
            self.probes.append(facts)

    listens = Listens()
    trainer, events = run(sample_config("run.max_iters=4"), EvalProbeHook(every=2), listens)
    trainer.start()
    events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert [p["iter"] for p in listens.probes] == [2, 4]
    assert all(p["num_images"] == 2 and isinstance(p["scores"], list) for p in listens.probes)
    assert trainer.model.training
