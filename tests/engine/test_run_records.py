"""What a real (tiny) run records for comparison and export: the dataset fingerprint in
``run_started`` and, with ``run.tensorboard = true``, live TensorBoard event files."""

from __future__ import annotations

import hashlib
import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cockpit.assembly import make_trainer
from cockpit.engine.session import RunRequest
from support import SAMPLE


def test_a_run_records_its_dataset_and_writes_tensorboard_live(sample_config, tmp_path):
    config = sample_config("run.max_iters=4", "run.tensorboard=true")
    trainer = make_trainer(RunRequest(config=config, config_path=SAMPLE / "shapes.toml"), headless=True)
    trainer.start()
    trainer.join(300)
    trainer.close()
    run_dir = trainer.run_dir
    started = next(json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
                   if json.loads(line)["kind"] == "run_started")
    dataset = started["dataset"]
    expected = hashlib.sha256((SAMPLE / "shapes" / "train.json").read_bytes()).hexdigest()
    assert dataset["train"] == {"source": "shapes/train.json", "images": 120, "sha256": expected}
    assert dataset["val"]["images"] == 30 and dataset["classes"] == ["circle", "square"]

    assert list(run_dir.glob("events.out.tfevents.*")), "event files beside metrics.jsonl"
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = {r["iter"]: r["loss_classifier"] for r in steps if r["kind"] == "train"}
    written = {e.step: e.value for e in accumulator.Scalars("train/loss_classifier")}
    assert set(written) == set(losses) == {1, 2, 3, 4}
    assert all(abs(written[it] - losses[it]) <= 1e-6 * max(1.0, abs(losses[it])) for it in losses)
    assert "train/lr" in accumulator.Tags()["scalars"]


def test_run_threads_is_applied_at_start_and_each_record_carries_the_cpu_load(sample_config, tmp_path):
    config = sample_config("run.max_iters=4", "run.log_every=2", "run.threads=1")
    trainer = make_trainer(RunRequest(config=config, config_path=SAMPLE / "shapes.toml"), headless=True)
    trainer.start()
    trainer.join(300)
    trainer.close()
    lines = [json.loads(line) for line in (trainer.run_dir / "events.jsonl").read_text().splitlines()]
    started = next(e for e in lines if e["kind"] == "run_started")
    assert started["environment"]["torch_threads"] == 1
    assert started["environment"]["torch_threads_reason"] == "run.threads = 1"
    assert started["environment"]["optimizer"] == "SGD, fused kernel"
    records = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["iter"] for r in train] == [2, 4]
    assert all(r["torch_threads"] == 1 and r["cpu_cores"] >= 1 and r["cpu_others"] >= 0 for r in train)
