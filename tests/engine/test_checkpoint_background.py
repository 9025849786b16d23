"""The end-of-epoch checkpoint is written on a thread of its own while the next epoch trains.

The sample's epoch is 30 iterations (120 images, batch 4), so its first end-of-epoch
checkpoint holds iteration 30.
"""

from __future__ import annotations

import errno
import threading

import torch

from cockpit.engine import checkpoint as ckpt
from cockpit.engine import checkpoint_writer, rundir
from cockpit.engine.commands import Stop
from cockpit.engine.events import CheckpointSaved, FaultCause, RunError, RunFinished, RunState, RunWarning, StateChanged
from cockpit.engine.hooks import Hook
from cockpit.engine.trainer import Trainer
from support import Recorder, run_until_finished

EPOCH = 30


class SaveEarly(Hook):
    """A synchronous save at iteration 2: the checkpoint a failed later write must leave alone."""

    def after_step(self, trainer, outcome):
        if outcome.iter == 2:
            assert trainer.save_checkpoint("early")


def fail_in_the_writer_thread(monkeypatch) -> None:
    """torch.save fails with ENOSPC on the background writer's thread only."""
    real_save = ckpt.torch.save

    def save(state, handle, *args, **kwargs):
        if threading.current_thread().name == "cockpit-checkpoint":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(state, handle, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", save)


def hold_writes_until_waited(monkeypatch) -> None:
    """A background write starts only once someone waits for it: no boundary's poll can
    collect it first."""
    release = threading.Event()
    real_write = ckpt.save_atomic

    def held_write(state, path):
        release.wait(60)
        return real_write(state, path)

    real_wait = checkpoint_writer.BackgroundWrite.wait

    def wait(self):
        release.set()
        real_wait(self)

    monkeypatch.setattr(ckpt, "save_atomic", held_write)
    monkeypatch.setattr(checkpoint_writer.BackgroundWrite, "wait", wait)


def last_pt(trainer: Trainer):
    return trainer.run_dir / rundir.CHECKPOINTS / rundir.LAST


def test_the_epoch_checkpoint_is_the_state_at_the_epoch_end_though_training_went_on(sample_config, monkeypatch):
    reached = threading.Event()
    seen: dict = {}
    real_write = ckpt.save_atomic

    def held_write(state, path):
        # Held until training is two iterations past the epoch end: a save on the training
        # thread would wait here for the full minute and find the iterations not reached.
        seen["thread"] = threading.current_thread().name
        seen["training_went_on"] = reached.wait(60)
        return real_write(state, path)

    monkeypatch.setattr(ckpt, "save_atomic", held_write)

    class Watch(Hook):
        def after_epoch(self, trainer, epoch):
            if epoch == 1:  # after the built-in CheckpointHook has staged its copy
                self.at_epoch_end = {k: v.clone() for k, v in trainer.model.state_dict().items()}

        def after_step(self, trainer, outcome):
            if outcome.iter == EPOCH + 2:
                reached.set()
            if outcome.iter == EPOCH + 3:
                trainer.send(Stop(save=False, reason="test"))

    watch = Watch()
    trainer = Trainer(sample_config("run.max_iters=40"), headless=True, hooks=[watch])
    events, finished = run_until_finished(trainer)
    assert finished.outcome == "stopped"
    assert seen == {"thread": "cockpit-checkpoint", "training_went_on": True}
    [saved] = events.of(CheckpointSaved)
    assert (saved.iter, saved.epoch, saved.reason) == (EPOCH, 1, "end of epoch 1")
    state = torch.load(last_pt(trainer), weights_only=True)
    assert (state["iteration"], state["epoch"], state["epoch_iter"]) == (EPOCH, 1, 0)
    assert all(torch.equal(state["model"][k], v) for k, v in watch.at_epoch_end.items())
    # A copy, not the live weights: three more iterations changed the model.
    now = trainer.model.state_dict()
    assert any(not torch.equal(state["model"][k], now[k]) for k in now if now[k].is_floating_point())


def test_a_failed_background_write_pauses_the_run_and_keeps_the_previous_checkpoint(sample_config, monkeypatch):
    fail_in_the_writer_thread(monkeypatch)
    trainer = Trainer(sample_config("run.max_iters=40"), hooks=[SaveEarly()])
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    paused = events.wait_for(lambda e: isinstance(e, StateChanged) and e.state is RunState.PAUSED)
    try:
        assert paused.reason.startswith("no space left on device writing checkpoints/last.pt")
        [error] = events.of(RunError)
        assert error.cause is FaultCause.CHECKPOINT and not error.fatal
        assert error.iter >= EPOCH  # told at an iteration boundary after the epoch's end
        assert [e.iter for e in events.of(CheckpointSaved)] == [2]
        assert torch.load(last_pt(trainer), weights_only=True)["iteration"] == 2
        assert not list(last_pt(trainer).parent.glob(".*.tmp")), "no temporary file left behind"
    finally:
        trainer.close(save=False)


def test_a_failed_background_write_stops_a_headless_run(sample_config, monkeypatch):
    fail_in_the_writer_thread(monkeypatch)
    trainer = Trainer(sample_config("run.max_iters=40"), headless=True, hooks=[SaveEarly()])
    events, finished = run_until_finished(trainer)
    assert finished.outcome == "failed"
    assert finished.reason.startswith("no space left on device writing checkpoints/last.pt")
    assert [e.iter for e in events.of(CheckpointSaved)] == [2]
    assert torch.load(last_pt(trainer), weights_only=True)["iteration"] == 2


def test_a_save_while_a_write_is_in_flight_waits_for_it_and_a_failed_one_is_only_a_warning(sample_config, monkeypatch):
    fail_in_the_writer_thread(monkeypatch)
    # Only the stop's save can collect the write.
    hold_writes_until_waited(monkeypatch)

    class StopAtEpochEnd(Hook):
        def after_epoch(self, trainer, epoch):
            trainer.send(Stop(save=True, reason="user"))

    trainer = Trainer(sample_config("run.max_iters=40"), headless=True, hooks=[StopAtEpochEnd()])
    events, finished = run_until_finished(trainer)
    assert finished.outcome == "stopped"
    [warning] = [w for w in events.of(RunWarning) if "not written" in w.message]
    assert warning.message.startswith(f"checkpoint of iteration {EPOCH} not written (no space left on device")
    assert warning.message.endswith("; writing a newer one")
    assert not events.of(RunError)
    [saved] = events.of(CheckpointSaved)
    assert saved.reason == "stop (user)" and saved.iter == EPOCH
    assert torch.load(last_pt(trainer), weights_only=True)["iteration"] == EPOCH
    assert isinstance(finished, RunFinished)


def test_a_write_that_ends_during_a_pause_is_told_then_not_at_resume(sample_config, monkeypatch):
    from cockpit.engine.commands import Pause

    real_write = ckpt.save_atomic
    holder: dict = {}

    def write_once_paused(state, path):
        # Written only once the run is paused, so only the paused boundary can report it.
        trainer = holder["trainer"]
        for _ in range(6000):
            if trainer.state is RunState.PAUSED:
                break
            threading.Event().wait(0.01)
        return real_write(state, path)

    monkeypatch.setattr(ckpt, "save_atomic", write_once_paused)

    class PauseAtEpochEnd(Hook):
        def after_epoch(self, trainer, epoch):
            trainer.send(Pause(reason="test"))

    trainer = Trainer(sample_config("run.max_iters=40"), hooks=[PauseAtEpochEnd()])
    holder["trainer"] = trainer
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    try:
        saved = events.wait_for(lambda e: isinstance(e, CheckpointSaved), timeout=60)
        assert (saved.iter, saved.reason) == (EPOCH, "end of epoch 1")
        assert trainer.state is RunState.PAUSED and trainer.iteration == EPOCH
    finally:
        trainer.close(save=False)


def test_a_best_pt_save_does_not_stand_in_for_a_failed_last_pt(sample_config, monkeypatch):
    fail_in_the_writer_thread(monkeypatch)
    hold_writes_until_waited(monkeypatch)

    class BestAtEpochEnd(Hook):
        def after_epoch(self, trainer, epoch):
            trainer.save_checkpoint("best AP (test)", best=True)

    trainer = Trainer(sample_config("run.max_iters=40"), headless=True, hooks=[BestAtEpochEnd()])
    events, finished = run_until_finished(trainer)
    assert finished.outcome == "failed"
    assert finished.reason.startswith("no space left on device writing checkpoints/last.pt")
    assert not [w for w in events.of(RunWarning) if "writing a newer one" in w.message]
    assert [(e.iter, e.best) for e in events.of(CheckpointSaved)] == [(EPOCH, True)]
