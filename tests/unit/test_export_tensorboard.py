"""TensorBoard export: event files read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import json
import math
import sys

import pytest
from report_fixtures import T0, make_finished_run, make_flagged_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cockpit.engine.events import EvalResult, RunFinished, RunStarted, RunState, StepMetrics
from cockpit.export.tags import train_tag
from cockpit.export.tb_listener import TensorBoardListener
from cockpit.export.tensorboard import TensorBoardMissing, export_run, require_tensorboard


def read_back(logdir) -> EventAccumulator:
    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator: EventAccumulator, tag: str) -> dict[int, float]:
    return {event.step: event.value for event in accumulator.Scalars(tag)}


def records(run_dir, kind):
    lines = (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    return [r for r in lines if r.get("kind") == kind]


def test_export_round_trips_every_scalar_under_stable_tags(tmp_path):
    run_dir = make_finished_run(tmp_path)
    summary = export_run(run_dir, tmp_path / "tb")
    accumulator = read_back(tmp_path / "tb")
    tags = set(accumulator.Tags()["scalars"])
    assert {
        "train/loss", "train/loss_classifier", "train/loss_box_reg", "train/loss_objectness", "train/loss_rpn_box_reg",
        "train/lr", "train/data_time", "train/iter_time", "train/grad_norm", "train/batch_size",
        "memory/allocated_mb", "memory/reserved_mb", "memory/peak_mb", "memory/rss_mb",
        "eval/AP", "eval/AP50", "eval/AP75", "eval/per_class_AP/circle", "eval/per_class_AP/square",
    } <= tags
    assert set(summary.tags) == tags
    # COCO's -1 ("no small objects") is left out rather than drawn as a drop.
    assert "eval/APs" not in tags
    train = records(run_dir, "train")
    assert len(accumulator.Scalars("train/loss_classifier")) == len(train)
    for record in train[::7]:
        it = record["iter"]
        assert scalars(accumulator, "train/loss_classifier")[it] == pytest.approx(record["loss_classifier"], rel=1e-6)
        assert scalars(accumulator, "memory/peak_mb")[it] == pytest.approx(record["mem_peak_mb"])
        assert scalars(accumulator, "train/data_time")[it] == pytest.approx(record["data_time"], rel=1e-6)
    assert scalars(accumulator, "eval/AP50") == {300: pytest.approx(0.55), 600: pytest.approx(0.8)}
    # Each point carries the record's own wall time.
    assert accumulator.Scalars("train/loss")[0].wall_time == pytest.approx(train[0]["timestamp"])
    # The config as text.
    assert "config" in accumulator.Tags()["tensors"]
    text = accumulator.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert "arch = \"tiny\"" in text


def test_export_skips_nan_points_and_keeps_the_rest(tmp_path):
    run_dir = make_flagged_run(tmp_path)
    export_run(run_dir, tmp_path / "tb")
    loss = scalars(read_back(tmp_path / "tb"), "train/loss")
    assert 250 not in loss and 240 in loss and 260 in loss
    assert all(math.isfinite(v) for v in loss.values())


def test_assignment_signals_and_val_loss_get_their_own_tags(tmp_path):
    run_dir = make_finished_run(tmp_path)
    path = run_dir / "metrics.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for record in lines:
        if record["kind"] == "train":
            record.update(roi_fg_frac=0.25, rpn_pos=12, gt_no_anchor=0)
        else:
            record["val_loss"] = {"loss": 0.9, "loss_classifier": 0.4}
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    export_run(run_dir, tmp_path / "tb")
    accumulator = read_back(tmp_path / "tb")
    tags = set(accumulator.Tags()["scalars"])
    assert {"assignment/roi_fg_frac", "assignment/rpn_pos", "assignment/gt_no_anchor", "val/loss", "val/loss_classifier"} <= tags
    assert scalars(accumulator, "val/loss_classifier")[600] == pytest.approx(0.4)


def test_live_listener_writes_the_same_tags_as_the_export(tmp_path):
    listener = TensorBoardListener(tmp_path)
    listener(RunStarted(run_dir=str(tmp_path), config={"run": {"name": "live"}, "optim": {"lr": 0.01}}, environment={}, time=T0))
    for it in (10, 20):
        listener(StepMetrics(iter=it, epoch=1, lr=0.01, losses={"loss_classifier": 0.5 / it, "loss_box_reg": 0.2},
                             loss=0.7, iter_time=0.2, data_time=0.01, grad_norm=2.0, batch_size=4,
                             memory={"allocated_mb": 100.0 + it, "rss_mb": 900.0}, time=T0 + it))
    listener(EvalResult(iter=20, epoch=1, metrics={"AP": 0.3, "AP50": 0.6}, per_class={"circle": 0.4}, time=T0 + 21))
    listener(RunFinished(state=RunState.FINISHED, iter=20, epoch=1, time=T0 + 22))
    listener(StepMetrics(iter=30, epoch=1, lr=0.01, losses={}, loss=0.1, time=T0 + 30))  # after the end: ignored
    accumulator = read_back(tmp_path)
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/loss_classifier", "train/lr", "train/iter_time", "train/data_time",
            "memory/allocated_mb", "memory/rss_mb", "eval/AP50", "eval/per_class_AP/circle"} <= tags
    # The step event's "allocated_mb" and metrics.jsonl's "mem_allocated_mb" are one tag.
    assert train_tag("mem_allocated_mb") == train_tag("allocated_mb") == "memory/allocated_mb"
    assert scalars(accumulator, "train/loss_classifier") == {10: pytest.approx(0.05), 20: pytest.approx(0.025)}
    assert scalars(accumulator, "memory/allocated_mb")[20] == pytest.approx(120.0)
    assert scalars(accumulator, "eval/AP50") == {20: pytest.approx(0.6)}
    assert 30 not in scalars(accumulator, "train/loss")
    assert "config" in accumulator.Tags()["tensors"]


def test_without_tensorboard_the_option_names_the_extra(monkeypatch, sample_config, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    with pytest.raises(TensorBoardMissing) as caught:
        require_tensorboard("run.tensorboard = true")
    message = str(caught.value)
    assert "\n" not in message and "pip install '.[tensorboard]'" in message
    from cockpit.assembly import make_trainer
    from cockpit.engine.session import RunRequest

    config = sample_config("run.tensorboard=true")
    with pytest.raises(TensorBoardMissing):
        make_trainer(RunRequest(config=config, config_path=tmp_path / "x.toml"), headless=True)
    assert not (tmp_path / "runs").exists()  # refused before any run folder was made
