"""Stable TensorBoard tags for the numbers of a run (pure: no tensorboard import).

Training records (a ``metrics.jsonl`` line, or a step event flattened the same way)::

    train/loss, train/loss_classifier, ..., train/lr, train/iter_time, train/data_time,
    train/grad_norm, train/batch_size, train/<any other number>
    memory/allocated_mb, memory/reserved_mb, memory/peak_mb, memory/total_mb, memory/rss_mb
    gpu/utilization
    assignment/rpn_pos, assignment/roi_fg_frac, ... (the label-assignment signals, when present)

Evaluation records::

    eval/AP, eval/AP50, ..., eval/ARl, eval/detections_per_image,
    eval/per_class_AP/<class>, val/<loss term> (``val_loss``, when present)

COCO writes -1 for "undefined" (e.g. APl with no large objects): those points are left
out rather than drawn as a drop to -1. NaN/Inf are left out too (TensorBoard cannot
show them).

A tag never changes once a run has written it: dashboards and ``--logdir`` comparisons
across runs rely on that.
"""

from __future__ import annotations

from typing import Any

from cockpit.runfiles import codec, records

ASSIGNMENT_KEYS = frozenset({
    "rpn_pos", "rpn_neg", "gt_no_anchor", "roi_fg", "roi_bg", "roi_fg_frac",
    "cls_accuracy", "fg_cls_accuracy", "false_negative",
})
_MEMORY = frozenset({"allocated_mb", "reserved_mb", "peak_mb", "total_mb", "rss_mb"})
_SKIP = frozenset({"kind", "iter", "epoch", "timestamp"})
_RENAMES = {"time": "iter_time"}


number = codec.finite
"""A finite float, else None (NaN/Inf and the strings the run files store them as are dropped)."""


def train_tag(key: str) -> str:
    """The tag of one key of a training record."""
    if key.startswith("mem_"):
        return f"memory/{key[4:]}"
    if key in _MEMORY:
        return f"memory/{key}"
    if key == "utilization":
        return "gpu/utilization"
    if key in ASSIGNMENT_KEYS:
        return f"assignment/{key}"
    return f"train/{_RENAMES.get(key, key)}"


def train_scalars(record: dict[str, Any]) -> dict[str, float]:
    """Tag -> value for every finite number in a flat training record."""
    out = {}
    for key, value in record.items():
        if key in _SKIP:
            continue
        scalar = number(value)
        if scalar is not None:
            out[train_tag(key)] = scalar
    return out


def flatten_step(event: dict[str, Any]) -> dict[str, Any]:
    """A step event (``to_dict()``) as the flat record ``metrics.jsonl`` holds for it."""
    return records.train_record(event)


def eval_scalars(record: dict[str, Any]) -> dict[str, float]:
    """Tag -> value for an evaluation record (``{"eval": {...COCO..., "per_class": {...}}, ...}``)."""
    out = {}
    metrics = record.get("eval") if isinstance(record.get("eval"), dict) else {}
    for key, value in metrics.items():
        if key == "per_class" and isinstance(value, dict):
            for name, ap in value.items():
                scalar = number(ap)
                if scalar is not None and scalar >= 0:
                    out[f"eval/per_class_AP/{name}"] = scalar
        elif key != "val_loss":
            scalar = number(value)
            if scalar is not None and scalar >= 0:
                out[f"eval/{key}"] = scalar
    scalar = number(record.get("detections_per_image"))
    if scalar is not None:
        out["eval/detections_per_image"] = scalar
    val_loss = record.get("val_loss", metrics.get("val_loss"))
    if isinstance(val_loss, dict):
        for key, value in val_loss.items():
            scalar = number(value)
            if scalar is not None:
                out[f"val/{key}"] = scalar
    elif number(val_loss) is not None:
        out["val/loss"] = number(val_loss)
    return out
