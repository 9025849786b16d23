"""Two ranks under torchrun (gloo, CPU): sharded data, one run directory, commands in step.

Each rank runs this file as a script (the ``__main__`` block at the end): it trains the
``tiny`` model on the bundled sample for a few iterations and writes what it observed --
every iteration's LR, losses, image ids and accumulation, and its (state, iteration,
exchanges) sampled from outside -- to ``rank<N>.json``; the tests assert on those files
and the run directory. Rank 0 also plays the user, answering a pause only after rank 1
has reported sitting paused through several heartbeats.

- The headless job (shared by most tests; starting two ranks costs seconds): rank 0 sends
  SetLR and Pause from a hook; an OOM and a NaN are injected on rank 1 only and must be
  agreed on by both ranks.
- The interactive job: a NaN on rank 1 pauses both ranks until one RewindSkip; a hook
  fault on rank 0 alone pauses rank 0, and rank 1 must follow it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
SAMPLE = HERE.parents[2] / "sample_data"

MAX_ITERS = 9  # the headless job
OOM_AT = 2  # on rank 1 only
SET_LR_AT = 3  # sent after this iteration: the next one runs at NEW_LR
NEW_LR = 0.0123
PAUSE_AT = 5
NAN_AT = 7  # on rank 1 only: headless, so every rank rewinds with LR x0.1
HEARTBEATS = 3

INTERACTIVE_ITERS = 5
NAN_AT_INTERACTIVE = 2  # on rank 1 only; rank 0 answers with RewindSkip(lr_factor=0.1)
HOOK_FAULT_AT = 4  # a hook raises on rank 0 only; rank 0 answers with Resume


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _overrides(output_dir: Path) -> list[str]:
    # The same short-run settings as the ``sample_config`` fixture (conftest.py).
    return [
        f"run.output_dir='{output_dir}'",
        "run.log_every=1",
        "eval.every_epochs=0",
        "optim.warmup_iters=2",
        "data.num_workers=0",
        "data.batch_size=2",
    ]


def _launch(work: Path, scenario: str, max_iters: int) -> tuple[dict, dict]:
    """Run the two ranks of ``scenario``; returns (rank 0 record, rank 1 record)."""
    plan = work / "plan.json"
    overrides = _overrides(work / "runs") + [f"run.max_iters={max_iters}"]
    plan.write_text(json.dumps({"work": str(work), "scenario": scenario, "overrides": overrides}))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("RANK", None)
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(HERE), str(plan),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    rank0, rank1 = (json.loads((work / f"rank{rank}.json").read_text()) for rank in (0, 1))
    return rank0, rank1


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The headless job: (work folder, rank 0 record, rank 1 record)."""
    work = tmp_path_factory.mktemp("ddp")
    rank0, rank1 = _launch(work, "headless", MAX_ITERS)
    return work, rank0, rank1


def test_both_ranks_train_every_iteration_on_their_own_shard(job):
    _, rank0, rank1 = job
    iters = list(range(1, MAX_ITERS + 1))
    assert [step["iter"] for step in rank0["steps"]] == iters
    assert [step["iter"] for step in rank1["steps"]] == iters
    for mine, theirs in zip(rank0["steps"], rank1["steps"]):
        assert mine["image_ids"] and theirs["image_ids"]
        assert not set(mine["image_ids"]) & set(theirs["image_ids"]), "both ranks trained on the same images"
        # Losses are averaged over ranks, so both report the same numbers.
        if mine["finite"]:
            assert math.isclose(mine["loss"], theirs["loss"], rel_tol=1e-6)
    assert rank0["state"] == rank1["state"] == "FINISHED"
    assert rank0["world_size"] == rank1["world_size"] == 2


def test_only_rank0_writes_one_run_directory_and_metrics_once(job):
    work, rank0, rank1 = job
    runs = [path for path in (work / "runs").iterdir() if path.is_dir()]
    assert [str(path) for path in runs] == [rank0["run_dir"]]
    assert rank1["run_dir"] is None
    lines = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    train_iters = [line["iter"] for line in lines if line["kind"] == "train"]
    assert train_iters == list(range(1, MAX_ITERS + 1))
    assert [line["kind"] for line in lines].count("eval") == 1
    started = [json.loads(line) for line in (runs[0] / "events.jsonl").read_text().splitlines() if '"run_started"' in line]
    assert len(started) == 1 and started[0]["environment"]["world_size"] == 2


def test_pause_holds_every_rank_at_the_same_iteration(job):
    _, rank0, rank1 = job
    for record in (rank0, rank1):
        paused = [sample for sample in record["samples"] if sample["state"] == "PAUSED"]
        assert paused, "this rank was never seen paused"
        assert {sample["iter"] for sample in paused} == {PAUSE_AT}
    # Rank 1 received several "still paused" rounds and never advanced meanwhile.
    rank1_paused = [sample for sample in rank1["samples"] if sample["state"] == "PAUSED"]
    assert rank1_paused[-1]["exchanges"] - rank1_paused[0]["exchanges"] >= HEARTBEATS


def test_lr_changes_reach_every_rank_at_the_same_iteration(job):
    _, rank0, rank1 = job
    lrs0 = [step["lrs"] for step in rank0["steps"]]
    lrs1 = [step["lrs"] for step in rank1["steps"]]
    assert lrs0 == lrs1
    by_iter = {step["iter"]: step["lrs"][0] for step in rank0["steps"]}
    assert by_iter[SET_LR_AT] != pytest.approx(NEW_LR)
    for it in range(SET_LR_AT + 1, NAN_AT + 1):
        assert by_iter[it] == pytest.approx(NEW_LR)
    for it in range(NAN_AT + 1, MAX_ITERS + 1):
        assert by_iter[it] == pytest.approx(NEW_LR * 0.1)


def test_oom_and_nan_on_one_rank_are_agreed_by_all(job):
    _, rank0, rank1 = job
    for record in (rank0, rank1):
        steps = {step["iter"]: step for step in record["steps"]}
        # The OOM on rank 1 made both ranks retry with two micro-batches.
        assert steps[OOM_AT - 1]["accumulation"] == 1
        assert steps[OOM_AT]["accumulation"] == 2
        # The NaN on rank 1 skipped the optimizer step on both.
        assert [it for it, step in steps.items() if not step["finite"]] == [NAN_AT]


def test_the_checkpoint_loads_in_a_single_process_run(job, sample_config):
    import torch

    from cockpit.engine.checkpoint import load
    from cockpit.engine.events import Outcome, RunFinished
    from cockpit.engine.model import build_model
    from cockpit.engine.trainer import Trainer
    from support import Recorder

    _, rank0, _ = job
    checkpoint = Path(rank0["run_dir"]) / "checkpoints" / "last.pt"
    state = load(checkpoint)
    assert not any(key.startswith("module.") for key in state["model"])
    assert state["iteration"] == MAX_ITERS
    config = sample_config(f"run.max_iters={MAX_ITERS + 1}", "data.batch_size=2", "data.val=''")
    model = build_model(config)
    model.load_state_dict(state["model"])  # strict: torchvision's own keys
    trainer = Trainer(config, resume=str(checkpoint), headless=True)
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    finished = events.wait_for(lambda event: isinstance(event, RunFinished))
    trainer.close()
    assert finished.outcome is Outcome.FINISHED and finished.iter == MAX_ITERS + 1
    assert torch.isfinite(torch.cat([p.flatten() for p in trainer.model.parameters()])).all()


def test_interactive_faults_pause_every_rank_and_recover_together(tmp_path):
    # A NaN on rank 1 pauses both ranks (rewound together by one RewindSkip); a hook fault
    # on rank 0 alone pauses rank 0, and rank 1 follows it rather than training on.
    rank0, rank1 = _launch(tmp_path, "interactive", INTERACTIVE_ITERS)
    for record in (rank0, rank1):
        assert [step["iter"] for step in record["steps"]] == list(range(1, INTERACTIVE_ITERS + 1))
        assert [step["iter"] for step in record["steps"] if not step["finite"]] == [NAN_AT_INTERACTIVE]
        assert {sample["iter"] for sample in record["samples"] if sample["state"] == "PAUSED"} == {
            NAN_AT_INTERACTIVE,
            HOOK_FAULT_AT,
        }
        assert record["state"] == "FINISHED"
    assert [step["lrs"] for step in rank0["steps"]] == [step["lrs"] for step in rank1["steps"]]
    lr = {step["iter"]: step["lrs"][0] for step in rank0["steps"]}
    assert lr[NAN_AT_INTERACTIVE + 1] == pytest.approx(lr[NAN_AT_INTERACTIVE] * 0.1)


def test_cockpit_run_nproc_2_trains_with_one_voice(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("RANK", None)
    command = [
        sys.executable, "-m", "cockpit", "run", str(SAMPLE / "shapes.toml"), "--nproc", "2", "--headless",
        "--set", f"run.output_dir='{tmp_path}'", "--set", "run.max_iters=3", "--set", "run.log_every=1",
        "--set", "data.val=''", "--set", "data.num_workers=0",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    lines = done.stdout.splitlines()
    # Rank 1 prints nothing: one header, one line per iteration, one ending.
    assert sum(line.startswith("run ") and " on " in line for line in lines) == 1
    assert sum(line.startswith("it ") for line in lines) == 3
    assert "run finished at iteration 3 (training complete)" in lines
    (run,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert (run / "checkpoints" / "last.pt").is_file()


def test_sampler_shards_pad_and_reshuffle_each_epoch():
    from cockpit.engine.sampler import EpochSampler

    shards = [EpochSampler(11, shuffle=True, seed=3, rank=rank, world_size=3) for rank in range(3)]
    orders = [shard.order() for shard in shards]
    assert [len(order) for order in orders] == [4, 4, 4] == [len(shard) for shard in shards]
    # 12 slots for 11 samples: every sample is seen, exactly one twice (the padding).
    counts = Counter(orders[0] + orders[1] + orders[2])
    assert set(counts) == set(range(11)) and sorted(counts.values()) == [1] * 10 + [2]
    for shard in shards:
        shard.set_epoch(1)
    assert [shard.order() for shard in shards] != orders
    # Resuming mid-epoch continues the same shard where it stopped.
    shards[1].set_epoch(1, start=2)
    assert list(shards[1]) == shards[1].order()[2:] and len(shards[1]) == 2
    single = EpochSampler(11, shuffle=True, seed=3)
    assert sorted(single.order()) == list(range(11)) and len(single) == 11


def test_launch_command_drops_nproc_and_keeps_the_rest():
    from cockpit.engine.distributed import detect, launch_command

    command = launch_command(["run", "c.toml", "--nproc", "2", "--headless", "--set", "run.seed=1", "--nproc=2"], 2)
    assert command[1:7] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    assert command[7:] == ["cockpit", "run", "c.toml", "--headless", "--set", "run.seed=1"]
    assert not detect({}).enabled
    context = detect({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert context.enabled and not context.is_main and context.local_rank == 1


# --------------------------------------------------------------------------- the ranks
def _rank_main(plan_path: str) -> None:
    from cockpit.config import load_config
    from cockpit.engine.commands import Pause, Resume, RewindSkip, SetLR
    from cockpit.engine.distributed import detect
    from cockpit.engine.events import RunState
    from cockpit.engine.faults import Injection
    from cockpit.engine.hooks import Hook
    from cockpit.engine.trainer import Trainer

    plan = json.loads(Path(plan_path).read_text())
    work = Path(plan["work"])
    interactive = plan["scenario"] == "interactive"
    context = detect()
    assert context.world_size == 2, context
    steps: list[dict] = []
    samples: list[dict] = []

    class Observer(Hook):
        def after_step(self, trainer, outcome):
            steps.append(
                {
                    "iter": outcome.iter,
                    "lrs": [group["lr"] for group in trainer.optimizer.param_groups],
                    "loss": outcome.loss,
                    "finite": outcome.finite,
                    "accumulation": outcome.accumulation,
                    "image_ids": outcome.image_ids,
                }
            )
            if not context.is_main:
                return
            if interactive and outcome.iter == HOOK_FAULT_AT:
                raise RuntimeError("a hook bug on rank 0 only")
            if not interactive and outcome.iter == SET_LR_AT:
                trainer.send(SetLR(NEW_LR))
            if not interactive and outcome.iter == PAUSE_AT:
                trainer.send(Pause(reason="test"))

    if interactive:
        injections = [Injection("nan", NAN_AT_INTERACTIVE)] if context.rank == 1 else []
        answers = [(NAN_AT_INTERACTIVE, RewindSkip(lr_factor=0.1)), (HOOK_FAULT_AT, Resume())]
    else:
        injections = [Injection("oom", OOM_AT), Injection("nan", NAN_AT)] if context.rank == 1 else []
        answers = [(PAUSE_AT, Resume())]
    config = load_config(SAMPLE / "shapes.toml", plan["overrides"])
    trainer = Trainer(
        config, headless=not interactive, hooks=[Observer()], injections=injections, dist=context
    )
    trainer.pause_heartbeat = 0.05
    trainer.start()

    def watch() -> None:
        # Samples the trainer from outside; what the tests assert is counters, not time.
        # Rank 1 tells rank 0 (through a file) once it has sat paused through a few
        # heartbeats, so rank 0 answers only after both ranks were seen holding still.
        first_exchanges: dict[int, int] = {}
        while trainer._thread.is_alive():
            sample = {"state": trainer.state.value, "iter": trainer.iteration, "exchanges": trainer.exchanges}
            samples.append(sample)
            if sample["state"] == "PAUSED" and not context.is_main:
                first = first_exchanges.setdefault(sample["iter"], sample["exchanges"])
                signal_file = work / f"rank1-paused-{sample['iter']}"
                if sample["exchanges"] - first >= HEARTBEATS and not signal_file.exists():
                    signal_file.write_text("")
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    if context.is_main:
        for iteration, answer in answers:
            deadline = time.monotonic() + 120
            while not (work / f"rank1-paused-{iteration}").exists():
                assert time.monotonic() < deadline, f"rank 1 never reported a pause at iteration {iteration}"
                assert trainer._thread.is_alive(), "the run ended before the pause"
                time.sleep(0.02)
            assert trainer.state is RunState.PAUSED and trainer.iteration == iteration
            trainer.send(answer)
    trainer.join()
    watcher.join()
    trainer.close()
    record = {
        "rank": context.rank,
        "world_size": context.world_size,
        "run_dir": str(trainer.run_dir) if trainer.run_dir is not None else None,
        "state": trainer.state.value,
        "steps": steps,
        "samples": samples,
    }
    (work / f"rank{context.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    _rank_main(sys.argv[1])
