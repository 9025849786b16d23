"""One home for the live config: every LR is bounded, changes are recorded, resume keeps them.

Also: a failing step pauses (interactive) or stops with the last good checkpoint
(headless); p/space toggle against the engine's state; one definition of epoch.
"""

from __future__ import annotations

import math
import tomllib

import pytest
import torch

from cockpit.config import ConfigError
from cockpit.engine import recovery as recovery_module
from cockpit.engine.commands import ApplyPatch, Resume, SaveCheckpoint, ScaleLR, SetLR, Stop, TogglePause
from cockpit.engine.events import (
    CheckpointSaved,
    CommandAck,
    ConfigChanged,
    EvalResult,
    FaultCause,
    LRChanged,
    Outcome,
    RunError,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    StateChanged,
    StepMetrics,
)
from cockpit.engine.recovery import Recovery
from cockpit.engine.trainer import Trainer
from support import Recorder, SendAt, run_until_finished


def run_to_end(config, *hooks, **kwargs) -> tuple[Trainer, Recorder, RunFinished]:
    trainer = Trainer(config, hooks=list(hooks), **kwargs)
    return (trainer, *run_until_finished(trainer))


def acks(events: Recorder, name: str) -> list[CommandAck]:
    return [e for e in events.of(CommandAck) if e.command == name]


# -- LR bounds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "0", "-0.1", "11"])
def test_a_config_lr_outside_the_bounds_is_refused_with_the_reason(sample_config, value):
    with pytest.raises(ConfigError, match="optim.lr"):
        sample_config(f"optim.lr={value}")


def test_every_live_lr_outside_the_bounds_is_refused_and_plus_is_capped(sample_config):
    config = sample_config("run.max_iters=3", "optim.warmup_iters=0", "optim.lr=4.0")
    bad = [SetLR(math.inf), SetLR(1e300), SetLR(0.0), SetLR(math.nan), ApplyPatch({"optim.lr": math.inf}), ApplyPatch({"optim.lr": 50.0})]
    trainer, events, finished = run_to_end(config, SendAt(1, *bad, ScaleLR(2.0), ScaleLR(2.0), ScaleLR(2.0)))
    assert finished.outcome is Outcome.FINISHED
    set_lr = acks(events, "set_lr")
    assert [a.ok for a in set_lr] == [False] * 4
    assert "finite" in set_lr[0].message and "<= 10" in set_lr[1].message and "> 0" in set_lr[2].message
    patches = acks(events, "patch")
    assert [a.ok for a in patches] == [False, False]
    assert "optim.lr" in patches[0].message and "finite" in patches[0].message
    # +: 4 -> 8 -> 10 (capped, with a message) -> refused at the maximum.
    scaled = acks(events, "scale_lr")
    assert [a.ok for a in scaled] == [True, True, False] and "maximum" in scaled[2].message
    assert [w.message for w in events.of(RunWarning) if w.category == "lr_capped"] == ["LR capped at the maximum 10"]
    lrs = {e.iter: e.lr for e in events.of(StepMetrics)}
    assert lrs[2] == pytest.approx(10.0) and all(math.isfinite(lr) for lr in lrs.values())


def test_a_snapshot_is_only_taken_of_finite_weights():
    class Fake:
        iteration = 7
        model = torch.nn.Linear(2, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    fake = Fake()
    recovery = Recovery(fake, [])
    with torch.no_grad():
        fake.model.weight[0, 0] = math.inf
    recovery.take_snapshot()
    assert recovery.snapshot is None
    with torch.no_grad():
        fake.model.weight[0, 0] = 1.0
    recovery.take_snapshot()
    assert recovery.snapshot is not None and recovery.snapshot.iteration == 7


def _fake_trainer():
    class Live:
        def restore_groups(self, lr):
            self.lr = lr

    class Fake:
        iteration = 7
        lr = 0.1
        live = Live()
        model = torch.nn.Linear(2, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    fake = Fake()
    fake.model.weight.grad = torch.ones(2, 2)
    fake.model.bias.grad = torch.ones(2)
    fake.optimizer.step()
    return fake


def test_a_new_snapshot_reuses_the_previous_buffers_and_holds_the_newest_weights():
    fake = _fake_trainer()
    recovery = Recovery(fake, [])
    recovery.take_snapshot()
    first = recovery.snapshot.model["weight"]
    with torch.no_grad():
        fake.model.weight.fill_(3.0)
    fake.iteration = 57
    recovery.take_snapshot()
    assert recovery.snapshot.model["weight"] is first  # no new allocation
    assert recovery.snapshot.iteration == 57 and torch.equal(first, torch.full((2, 2), 3.0))
    assert first.data_ptr() != fake.model.weight.data_ptr()


def test_training_after_a_rewind_leaves_the_snapshot_untouched():
    fake = _fake_trainer()
    recovery = Recovery(fake, [])
    recovery.take_snapshot()
    saved = {k: v.clone() for k, v in recovery.snapshot.optimizer["state"][0].items()}
    recovery.restore_snapshot()
    for _ in range(3):  # momentum buffers are updated in place by SGD
        fake.optimizer.step()
    assert torch.equal(recovery.snapshot.optimizer["state"][0]["momentum_buffer"], saved["momentum_buffer"])
    recovery.take_snapshot()  # reusing buffers must not alias the live optimizer state either
    fake.optimizer.step()
    live = fake.optimizer.state[fake.model.weight]["momentum_buffer"]
    assert recovery.snapshot.optimizer["state"][0]["momentum_buffer"].data_ptr() != live.data_ptr()


# -- a failing step ----------------------------------------------------------------------------
@pytest.fixture
def step_fails_at(monkeypatch):
    """Make the training step raise (as SGD does on an LR overflow) at the given call."""

    def install(call: int):
        real = recovery_module.train_step
        calls = {"n": 0}

        def failing(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == call:
                raise RuntimeError("value cannot be converted to type float without overflow")
            return real(*args, **kwargs)

        monkeypatch.setattr(recovery_module, "train_step", failing)

    return install


def test_a_step_exception_pauses_the_interactive_run_which_then_resumes(sample_config, step_fails_at):
    step_fails_at(3)
    config = sample_config("run.max_iters=5")
    trainer = Trainer(config)
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    paused = events.wait_for(lambda e: isinstance(e, StateChanged) and e.state is RunState.PAUSED)
    error = events.of(RunError)[0]
    assert not error.fatal and error.cause is FaultCause.STEP and "training step failed" in error.summary
    assert "overflow" in error.summary and paused.iter == 2
    trainer.send(Resume())
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert finished.outcome is Outcome.FINISHED and finished.iter == 5


def test_a_step_exception_stops_the_headless_run_with_a_checkpoint(sample_config, step_fails_at):
    step_fails_at(3)
    _, events, finished = run_to_end(sample_config("run.max_iters=5"), headless=True)
    assert finished.outcome is Outcome.FAILED and "training step failed" in finished.reason
    saved = events.of(CheckpointSaved)
    assert saved and saved[-1].iter == 2
    state = torch.load(saved[-1].path, weights_only=True)
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# -- p / space -----------------------------------------------------------------------------------
def test_an_even_number_of_toggles_leaves_the_run_running(sample_config):
    _, events, finished = run_to_end(sample_config("run.max_iters=4"), SendAt(2, TogglePause(), TogglePause()))
    assert finished.outcome is Outcome.FINISHED and finished.iter == 4
    states = [e.state for e in events.of(StateChanged)]
    assert states.count(RunState.PAUSED) == 1 and states.count(RunState.RUNNING) == 2  # paused, then running again
    assert [a.ok for a in acks(events, "toggle_pause")] == [True, True]


def test_an_odd_number_of_toggles_pauses_the_run(sample_config):
    trainer = Trainer(sample_config("run.max_iters=4"), hooks=[SendAt(2, TogglePause(), TogglePause(), TogglePause())])
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    events.wait_for(lambda e: isinstance(e, CommandAck) and len(acks(events, "toggle_pause")) == 3)
    assert trainer.state is RunState.PAUSED and trainer.iteration == 2
    trainer.send(TogglePause())
    finished = events.wait_for(lambda e: isinstance(e, RunFinished))
    trainer.close()
    assert finished.outcome is Outcome.FINISHED and finished.iter == 4


# -- one definition of epoch ------------------------------------------------------------------------
def test_eval_and_train_records_agree_on_the_epoch_and_the_run_knows_its_epochs(sample_config):
    # 120 images / batch 4 = 30 iterations per epoch; max_iters ends the run in epoch 3 of 20.
    config = sample_config("run.max_iters=65", "run.log_every=30", "eval.every_epochs=1")
    _, events, finished = run_to_end(config)
    started = events.of(RunStarted)[0]
    assert started.iters_per_epoch == 30 and started.total_epochs == 3 and started.epochs == 3
    train = {e.iter: e.epoch for e in events.of(StepMetrics)}
    evals = {e.iter: e.epoch for e in events.of(EvalResult)}
    assert train == {30: 1, 60: 2}
    assert evals[30] == train[30] and evals[60] == train[60] and evals[65] == 3
    end_of_epoch = [e.epoch for e in events.of(CheckpointSaved) if "end of epoch" in e.reason]
    assert end_of_epoch == [1, 2]
    assert finished.epoch == 3


# -- resume continues at the LR the user last set ------------------------------------------------------
def test_lr_keys_update_the_effective_config_and_resume_continues_at_that_lr(sample_config):
    config = sample_config("run.max_iters=5", "optim.warmup_iters=0")
    base = config.optim.lr
    trainer, events, _ = run_to_end(config, SendAt(2, ScaleLR(2.0), ScaleLR(2.0)), SendAt(3, Stop(save=True)))
    changed = events.of(ConfigChanged)
    assert [e.config["optim"]["lr"] for e in changed] == [pytest.approx(2 * base), pytest.approx(4 * base)]
    assert changed[-1].changed == ["optim.lr"]
    effective = tomllib.loads((trainer.run_dir / "effective.toml").read_text(encoding="utf-8"))
    assert effective["optim"]["lr"] == pytest.approx(4 * base)
    # config.toml stays what the run started with.
    start = tomllib.loads((trainer.run_dir / "config.toml").read_text(encoding="utf-8"))
    assert start["optim"]["lr"] == pytest.approx(base)

    resumed, events, finished = run_to_end(sample_config("run.max_iters=4", "optim.warmup_iters=0"), resume="auto")
    assert events.of(RunStarted)[0].start_iter == 3
    assert resumed.run_dir == trainer.run_dir
    started = events.of(RunStarted)[0]
    assert started.config["optim"]["lr"] == pytest.approx(4 * base) and started.lr == pytest.approx(4 * base)
    assert [e.lr for e in events.of(StepMetrics)] == [pytest.approx(4 * base)]


def test_resume_from_an_older_checkpoint_still_takes_the_last_lr(sample_config):
    # The LR changes after the last checkpoint and the run ends without saving (a kill).
    config = sample_config("run.max_iters=4", "optim.warmup_iters=0")
    base = config.optim.lr
    trainer, _, _ = run_to_end(config, SendAt(1, SaveCheckpoint()), SendAt(2, SetLR(base / 4)), SendAt(3, Stop(save=False)))
    _, events, _ = run_to_end(sample_config("run.max_iters=3", "optim.warmup_iters=0"), resume=str(trainer.run_dir))
    assert events.of(RunStarted)[0].start_iter == 1
    assert [e.lr for e in events.of(StepMetrics)] == [pytest.approx(base / 4)] * 2


def test_a_patch_of_optim_lr_sets_the_base_lr_and_is_recorded(sample_config):
    config = sample_config("run.max_iters=4", "optim.warmup_iters=0")
    trainer, events, _ = run_to_end(config, SendAt(2, ApplyPatch({"optim.lr": 0.003, "optim.momentum": 0.8})))
    (change,) = events.of(ConfigChanged)
    assert change.changed == ["optim.lr", "optim.momentum"] and change.config["optim"]["lr"] == pytest.approx(0.003)
    assert [e.lr for e in events.of(LRChanged)] == [pytest.approx(0.003)]
    assert trainer.config.optim.lr == pytest.approx(0.003) and trainer.optimizer.param_groups[0]["momentum"] == 0.8
    effective = tomllib.loads((trainer.run_dir / "effective.toml").read_text(encoding="utf-8"))
    assert effective["optim"]["momentum"] == pytest.approx(0.8)


def test_the_first_recorded_lr_is_linear_lr_start_factor(sample_config):
    # Warm-up like torchvision's references: the first step uses base * 1/1000.
    config = sample_config("run.max_iters=2", "optim.warmup_iters=10")
    _, events, _ = run_to_end(config)
    assert events.of(RunStarted)[0].lr == pytest.approx(config.optim.lr * 1e-3)
    assert events.of(StepMetrics)[0].lr == pytest.approx(config.optim.lr * 1e-3)


def test_resume_of_a_checkpoint_with_a_non_finite_lr_falls_back_on_the_config_lr(sample_config):
    # Written before the bounds existed: the schedule's base_lr is inf.
    config = sample_config("run.max_iters=2", "optim.warmup_iters=0")
    trainer, _, _ = run_to_end(config)
    last = trainer.run_dir / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["lr_scheduler"]["base_lr"] = math.inf
    torch.save(state, last)
    (trainer.run_dir / "effective.toml").unlink(missing_ok=True)
    _, events, finished = run_to_end(sample_config("run.max_iters=3", "optim.warmup_iters=0"), resume=str(last))
    assert finished.outcome is Outcome.FINISHED
    assert [e.lr for e in events.of(StepMetrics)] == [pytest.approx(config.optim.lr)]
    assert events.of(RunStarted)[0].config["optim"]["lr"] == pytest.approx(config.optim.lr)
