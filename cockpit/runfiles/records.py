"""The columns of ``metrics.jsonl``, built from event dicts (``Event.to_dict()`` / ``events.jsonl`` lines).

One function per record kind, used by the engine's writer and by every reader that has
to rebuild records from ``events.jsonl`` (a run whose ``metrics.jsonl`` was lost), so the
two can never disagree on a column name.
"""

from __future__ import annotations

from typing import Any

MEMORY_PREFIX = "mem_"
"""Memory probe values become ``mem_<key>`` columns; ``rss_mb`` and ``utilization`` keep
their names (they are not GPU allocator figures)."""

_UNPREFIXED = frozenset({"rss_mb", "utilization"})


def memory_column(key: str) -> str:
    """The ``metrics.jsonl`` column of a step's ``memory`` key."""
    return key if key in _UNPREFIXED else MEMORY_PREFIX + key


def train_record(step: dict[str, Any]) -> dict[str, Any]:
    """A ``metrics.jsonl`` training line from a ``step`` event: flat, one column per loss term."""
    record: dict[str, Any] = {"kind": "train"}
    for key in ("iter", "epoch", "lr", "loss"):
        record[key] = step.get(key)
    losses = step.get("losses")
    if isinstance(losses, dict):
        record.update(losses)
    record.update(
        time=step.get("iter_time"),
        data_time=step.get("data_time"),
        grad_norm=step.get("grad_norm"),
        batch_size=step.get("batch_size"),
    )
    memory = step.get("memory")
    if isinstance(memory, dict):
        record.update({memory_column(k): v for k, v in memory.items()})
    # Fields a newer engine adds to the step (a dict of signals, a number) become columns
    # too, so a new signal reaches metrics.jsonl, the report and the export unnamed here.
    for key, value in step.items():
        if key in _NAMED:
            continue
        if isinstance(value, dict):
            for inner, item in value.items():
                record.setdefault(str(inner), item)
        else:
            record.setdefault(key, value)
    record["timestamp"] = step.get("time")
    return record


_NAMED = frozenset({
    "kind", "iter", "epoch", "lr", "loss", "losses", "iter_time", "data_time", "grad_norm", "batch_size",
    "memory", "time",
})
"""Step fields :func:`train_record` places itself."""


def eval_record(event: dict[str, Any]) -> dict[str, Any]:
    """A ``metrics.jsonl`` evaluation line from an ``eval`` event."""
    metrics = event.get("metrics")
    per_class = event.get("per_class")
    record = {
        "kind": "eval",
        "iter": event.get("iter"),
        "epoch": event.get("epoch"),
        "eval": {**(metrics if isinstance(metrics, dict) else {}),
                 "per_class": dict(per_class) if isinstance(per_class, dict) else {}},
        "detections_per_image": event.get("detections_per_image"),
        "timestamp": event.get("time"),
    }
    val_loss = event.get("val_loss")
    if isinstance(val_loss, dict) and val_loss:
        record["val_loss"] = dict(val_loss)  # the four terms and "loss" on the val split
    return record


def monotonic(rows: list[dict[str, Any]], *, keep_equal: bool = False) -> tuple[list[dict[str, Any]], int]:
    """One history from records appended across resumes, and how many were dropped.

    A record whose ``iter`` is not past the previous one's marks a resume: the records
    from that iteration on that came before it were replaced, so they are dropped.
    Runs resumed by this version already had them moved to ``metrics.abandoned.jsonl``;
    this keeps older folders (and ``events.jsonl``, which keeps the whole log) readable.
    ``keep_equal``: two records at the same iteration both stay (evaluations: a
    scheduled one and one asked for by the user).
    """
    iters = [row.get("iter") for row in rows]
    if set(map(type, iters)) == {int} and all(
        (a <= b if keep_equal else a < b) for a, b in zip(iters, iters[1:])
    ):
        return list(rows), 0  # nothing resumed (the common case): no per-record work
    kept: list[dict[str, Any]] = []
    dropped = 0
    for row in rows:
        it = row.get("iter")
        if isinstance(it, int) and not isinstance(it, bool):
            while kept and _past(kept[-1].get("iter"), it, keep_equal):
                kept.pop()
                dropped += 1
        kept.append(row)
    return kept, dropped


def _past(previous: Any, it: int, keep_equal: bool) -> bool:
    if not isinstance(previous, int) or isinstance(previous, bool):
        return False
    return previous > it if keep_equal else previous >= it
