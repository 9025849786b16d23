"""Fixture run directories for the report tests, written the way the engine writes them.

Events go through the real event classes (``event.to_dict()``), so a change to the
event contract breaks these fixtures loudly instead of silently testing stale shapes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from cockpit.config import Config, dump_config
from cockpit.runfiles.codec import dumps
from cockpit.engine.events import (
    CheckpointSaved,
    CommandAck,
    EvalResult,
    FlagRaised,
    LRChanged,
    LRSource,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    Severity,
    StateChanged,
)

T0 = 1_760_000_000.0
CLASSES = ["circle", "square"]
ENVIRONMENT = {
    "python": "3.11.7",
    "torch": "2.5.0",
    "torchvision": "0.20.0",
    "cuda": "12.4",
    "device": "cuda:0",
    "gpu_name": "NVIDIA H100 80GB HBM3",
}
EVIL = "<script>alert('x')</script> & \"quoted\""
"""User text with HTML specials: must show escaped, never as markup."""


def _eval_numbers(ap: float) -> dict[str, Any]:
    return {
        "AP": ap, "AP50": min(1.0, ap + 0.25), "AP75": ap * 0.8, "APs": -1.0, "APm": ap * 0.9, "APl": ap,
        "AR1": ap, "AR10": ap + 0.1, "AR100": ap + 0.12, "ARs": -1.0, "ARm": ap, "ARl": ap + 0.1,
    }


def _train_record(it: int, epoch: int, lr: float, nan: bool = False, telemetry: bool = False) -> dict[str, Any]:
    decay = math.exp(-it / 300)
    terms = {
        "loss_classifier": 0.6 * decay + 0.05 + 0.02 * math.sin(it),
        "loss_box_reg": 0.4 * decay + 0.1,
        "loss_objectness": 0.3 * decay + 0.01,
        "loss_rpn_box_reg": 0.1 * decay + 0.02,
    }
    total = sum(terms.values())
    record = {
        "kind": "train", "iter": it, "epoch": epoch, "lr": lr, "loss": total, **terms,
        "time": 0.21, "data_time": 0.01, "grad_norm": 3.2 * decay + 0.5, "batch_size": 2,
        "rss_mb": 2100.0 + it * 0.1, "mem_allocated_mb": 1800.0, "mem_reserved_mb": 2400.0,
        "mem_peak_mb": 2200.0 + (it % 50), "timestamp": T0 + it * 0.21,
    }
    if telemetry:
        # Label-assignment telemetry (engine/assignment.py), improving as a healthy run's does.
        record.update({
            "rpn_pos": 4.0, "rpn_neg": 124.0, "gt_no_anchor": 0.6, "roi_fg": 6 + 6 * (1 - decay),
            "roi_bg": 58 - 6 * (1 - decay), "roi_fg_frac": (6 + 6 * (1 - decay)) / 64, "cls_accuracy": 0.9,
            "fg_cls_accuracy": 0.6 * (1 - decay), "false_negative": decay, "gt_size": 40.0,
        })
    if nan:
        record["loss"] = float("nan")
        record["loss_box_reg"] = float("nan")
    return record


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    # The writer's own encoding (compact, NaN as "nan"): the report reads such lines as columns.
    path.write_text("".join(dumps(r) + "\n" for r in records), encoding="utf-8")


def _write_val_set(root: Path) -> Path:
    """A two-image COCO val split with real PNGs; returns the annotation file."""
    data = root / "data"
    (data / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(2):
        image = Image.new("RGB", (160, 120), (235, 235, 240))
        draw = ImageDraw.Draw(image)
        draw.ellipse([20, 20, 70, 70], fill=(60, 90, 200))
        draw.rectangle([90, 40, 140, 100], fill=(200, 120, 40))
        name = f"img{index}.png"
        image.save(data / "images" / name)
        images.append({"id": index + 1, "file_name": name, "width": 160, "height": 120})
        annotations.append({"id": 2 * index + 1, "image_id": index + 1, "category_id": 1, "bbox": [20, 20, 50, 50], "area": 2500, "iscrowd": 0})
        annotations.append({"id": 2 * index + 2, "image_id": index + 1, "category_id": 2, "bbox": [90, 40, 50, 60], "area": 3000, "iscrowd": 0})
    categories = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]
    path = data / "val.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def _preflight() -> dict[str, Any]:
    split = {
        "images": 40, "boxes": 80, "images_without_objects": 1,
        "class_histogram": {"circle": 41, "square": 39},
        "box_size_histogram": {"<16px": 2, "16-32px": 10, "32-96px": 60, ">96px": 8},
    }
    return {
        "splits": {"train": split, "val": dict(split, images=10, boxes=20)},
        "verdicts": [
            {"rule": "degenerate_boxes", "title": "Degenerate boxes (x2<=x1 or y2<=y1)", "state": "OK", "severity": "info",
             "evidence": "0 of 80 boxes", "likely_cause": "", "fix": "", "split": "train"},
            {"rule": "empty_images", "title": "Images without objects", "state": "FLAGGED", "severity": "warning",
             "evidence": "1 of 40 images has no boxes (sample 7)", "likely_cause": "negatives in the data",
             "fix": "keep them if intended; otherwise fix the annotations", "split": "train"},
        ],
    }


def _make_run(
    root: Path,
    name: str,
    *,
    iters: int = 600,
    log_every: int = 10,
    nan_at: tuple[int, ...] = (),
    user_lr: dict[int, float] | None = None,
    telemetry: bool = False,
) -> tuple[Path, Config, list[dict[str, Any]], list[dict[str, Any]]]:
    """Write config.toml, metrics.jsonl, preflight.json and checkpoints; return the events to add."""
    val = _write_val_set(root)
    config = Config.model_validate(
        {
            "run": {"name": name, "output_dir": "runs", "epochs": 2, "log_every": log_every},
            "data": {"format": "coco", "classes": CLASSES, "train": str(val), "val": str(val), "val_images": str(val.parent / "images")},
            "model": {"arch": "tiny"},
            "optim": {"lr": 0.01, "warmup_iters": 30},
        }
    )
    run_dir = root / "runs" / f"{name}-20251009-101010"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "predictions").mkdir()
    (run_dir / "config.toml").write_text(dump_config(config), encoding="utf-8")
    (run_dir / "preflight.json").write_text(json.dumps(_preflight()))

    user_lr = user_lr or {}
    records: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = [
        RunStarted(run_dir=str(run_dir), config=config.model_dump(), environment=ENVIRONMENT, total_iters=iters,
                   iters_per_epoch=iters // 2, time=T0).to_dict(),
        StateChanged(state=RunState.RUNNING, previous=RunState.IDLE, reason="started", time=T0 + 0.1).to_dict(),
    ]
    lr = 0.0
    for it in range(1, iters + 1):
        epoch = 0 if it <= iters // 2 else 1
        stamp = T0 + it * 0.21
        if it <= 30:  # warm-up: the schedule moves the LR every iteration
            new_lr = 0.01 * it / 30
            events.append(LRChanged(iter=it, lr=new_lr, previous=lr, source=LRSource.SCHEDULE, time=stamp).to_dict())
            lr = new_lr
        if it in user_lr:
            events.append(LRChanged(iter=it, lr=user_lr[it], previous=lr, source=LRSource.USER, time=stamp).to_dict())
            events.append(CommandAck(command="set_lr", iter=it, time=stamp).to_dict())
            lr = user_lr[it]
        if it % log_every == 0:
            records.append(_train_record(it, epoch, lr, nan=it in nan_at, telemetry=telemetry))
        if it % (iters // 2) == 0:
            ap = 0.3 if it == iters // 2 else 0.55
            numbers = _eval_numbers(ap)
            per_class = {"circle": ap + 0.05, "square": ap - 0.05}
            record = {"kind": "eval", "iter": it, "epoch": epoch, "eval": {**numbers, "per_class": per_class}, "timestamp": stamp}
            if telemetry:
                val_loss = {k: v * 1.1 for k, v in _train_record(it, epoch, 0.01).items() if k.startswith("loss_")}
                record["val_loss"] = {**val_loss, "loss": sum(val_loss.values())}
            records.append(record)
            events.append(EvalResult(iter=it, epoch=epoch, metrics=numbers, per_class=per_class, num_images=2,
                                     predictions_path=f"predictions/eval-iter{it:06d}.json", time=stamp).to_dict())
            preds = [
                {"image_id": 1, "category_id": 1, "bbox": [22, 18, 48, 52], "score": 0.93},
                {"image_id": 1, "category_id": 2, "bbox": [88, 42, 50, 55], "score": 0.71},
                {"image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 20], "score": 0.2},
            ]
            (run_dir / "predictions" / f"eval-iter{it:06d}.json").write_text(json.dumps(preds))
            events.append(CheckpointSaved(iter=it, epoch=epoch, path="checkpoints/last.pt", reason="epoch end", time=stamp).to_dict())
            events.append(CheckpointSaved(iter=it, epoch=epoch, path="checkpoints/best.pt", reason="best AP", best=True, time=stamp).to_dict())
    _write_jsonl(run_dir / "metrics.jsonl", records)
    for ckpt in ("last", "best"):
        (run_dir / "checkpoints" / f"{ckpt}.pt").write_bytes(b"not really a torch file" * 100)
    return run_dir, config, records, events


def _write_engine_preview(run_dir: Path) -> None:
    (run_dir / "previews").mkdir()
    image = Image.new("RGB", (200, 150), (240, 240, 240))
    ImageDraw.Draw(image).ellipse([30, 30, 90, 90], fill=(50, 80, 190))
    image.save(run_dir / "previews" / "val-0.png")
    (run_dir / "previews" / "val-0.json").write_text(json.dumps({
        "image_path": "data/images/img0.png",
        "gt_boxes": [[30, 30, 90, 90]], "gt_labels": [1],
        "boxes": [[28, 33, 92, 88], [150, 100, 190, 140]], "labels": [1, 2], "scores": [0.9, 0.1],
        "classes": CLASSES,
    }))


def make_finished_run(root: Path, telemetry: bool = False) -> Path:
    """A run that ran to the end: evals, checkpoints, engine previews, a finished event."""
    run_dir, _config, _records, events = _make_run(root, "demo", telemetry=telemetry)
    events.append(StateChanged(state=RunState.FINISHED, previous=RunState.RUNNING, reason="done", iter=600, time=T0 + 130).to_dict())
    events.append(RunFinished(state=RunState.FINISHED, iter=600, epoch=1, outcome="finished", reason="all epochs done", time=T0 + 130).to_dict())
    _write_jsonl(run_dir / "events.jsonl", events)
    _write_engine_preview(run_dir)
    (run_dir / "cockpit.log").write_text("iter 10 loss 1.2\n")
    return run_dir


def make_flagged_run(root: Path) -> Path:
    """A run stopped by the user: flags, user LR changes, a pause, skipped samples, an OOM retry, a NaN rewind."""
    run_dir, _config, _records, events = _make_run(root, "flaky", nan_at=(250,), user_lr={200: 0.02, 400: 0.001})
    extra = [
        StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="user pause", iter=150, time=T0 + 32).to_dict(),
        StateChanged(state=RunState.RUNNING, previous=RunState.PAUSED, reason="user resume", iter=150, time=T0 + 40).to_dict(),
        RunWarning(message="skipped sample data/images/broken.png: cannot identify image file", iter=160, category="skipped_sample",
                   details={"path": "data/images/broken.png"}, time=T0 + 41).to_dict(),
        RunWarning(message="skipped sample data/images/broken2.png", iter=161, category="skipped_sample", time=T0 + 41.2).to_dict(),
        RunWarning(message="CUDA OOM at batch 2; retrying with batch 1", iter=220, category="oom_retry", time=T0 + 50).to_dict(),
        FlagRaised(rule="nonfinite_loss", title="Loss is NaN / Inf", status="FLAGGED", severity=Severity.ERROR,
                   evidence=f"loss_box_reg = nan at iteration 250 {EVIL}", likely_cause="LR too high for this batch size",
                   fix="lower optim.lr (e.g. 0.005) or set optim.grad_clip = 10", iter=250, time=T0 + 53).to_dict(),
        RunWarning(message="NaN loss: rewound to checkpoint of iteration 240 and halved the LR", iter=250, category="nan_rewind", time=T0 + 53.5).to_dict(),
        LRChanged(iter=250, lr=0.01, previous=0.02, source=LRSource.RECOVERY, time=T0 + 53.6).to_dict(),
        FlagRaised(rule="nonfinite_loss", title="Loss is NaN / Inf", status="OK", evidence="finite for 100 iterations", iter=350, time=T0 + 74).to_dict(),
        FlagRaised(rule="no_val_detections", title="Good train loss, zero val detections", status="FLAGGED", severity=Severity.WARNING,
                   evidence="0 detections above 0.5 on 2 val images", likely_cause="score threshold too high early in training",
                   fix="lower eval.score_thresh or train longer", iter=300, data={"score_histogram": {"0.0-0.1": 40, "0.1-0.2": 3}}, time=T0 + 63).to_dict(),
        FlagRaised(rule="flat_loss", title="Loss flat, no foreground matched", status="OK", evidence="loss fell 60%", iter=300, time=T0 + 63).to_dict(),
    ]
    events = sorted(events + extra, key=lambda e: e["time"])
    events.append(StateChanged(state=RunState.STOPPING, previous=RunState.RUNNING, reason="user stop", iter=600, time=T0 + 129).to_dict())
    events.append(RunFinished(state=RunState.FINISHED, iter=600, epoch=1, outcome="stopped", reason="stopped by the user", time=T0 + 130).to_dict())
    _write_jsonl(run_dir / "events.jsonl", events)
    return run_dir


def make_damaged_run(root: Path) -> Path:
    """A run killed early: truncated last metrics line, no events.jsonl, no eval, no checkpoint, no preflight."""
    run_dir = root / "runs" / "broken-20251009-111111"
    run_dir.mkdir(parents=True)
    config = Config.model_validate({"run": {"name": "broken"}, "data": {"classes": CLASSES}})
    (run_dir / "config.toml").write_text(dump_config(config), encoding="utf-8")
    lines = [json.dumps(_train_record(it, 0, 0.005)) for it in range(10, 110, 10)]
    # The process died while writing the last line.
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][: len(lines[-1]) // 2], encoding="utf-8")
    return run_dir


def make_long_metrics(run_dir: Path, n: int) -> None:
    """Replace metrics.jsonl with ``n`` training records (plus one NaN spike)."""
    records = [_train_record(it, it // 1000, 0.005, nan=(it == n // 2)) for it in range(1, n + 1)]
    records[n // 3]["loss"] = 1e4  # a spike the decimated plot must keep
    _write_jsonl(run_dir / "metrics.jsonl", records)
