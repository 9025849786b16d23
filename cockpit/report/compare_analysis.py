"""What a comparison of runs says: their curves, a side-by-side table, config and data differences.

Pure functions from several :class:`~cockpit.report.rundir.RunDir` to plain values; the
comparison document (:mod:`cockpit.report.compare`) lays them out. A run directory that is
damaged or still being written gives what it has: a metric it lacks is "n/a" in the
table and absent from that plot, and the document says what each run is missing.

Curves are found generically: the loss terms, the LR, the label-assignment signals
(:data:`ASSIGNMENT_KEYS`) and any other numeric key a training record carries, plus the
validation losses (``val_loss``, a dict or a number, in evaluation records) and AP50 --
so a signal a newer engine adds shows up without a change here.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from cockpit.report import analysis as an
from cockpit.report.rundir import LOSS_KEYS, MEMORY_KEYS, RunDir, finite

ASSIGNMENT_KEYS = (
    "rpn_pos", "rpn_neg", "gt_no_anchor", "roi_fg", "roi_bg", "roi_fg_frac",
    "cls_accuracy", "fg_cls_accuracy", "false_negative",
)
"""Label-assignment signals of the training records (absent on runs that predate them)."""

_NOT_CURVES = frozenset({"kind", "iter", "epoch", "timestamp", "time", "batch_size", "utilization", *MEMORY_KEYS})
"""Record keys that are bookkeeping (or memory, which has its own table row), not curves."""

TABLE_AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass(frozen=True)
class Curve:
    """One metric across runs: per run label, (iterations, values)."""

    key: str
    group: str
    """``losses``, ``evaluation``, ``assignment`` or ``other``: which figure it goes in."""
    series: dict[str, tuple[list[float], list[float]]]


@dataclass
class Row:
    """One line of the side-by-side table; ``best`` is the label of the best run (or None)."""

    label: str
    values: dict[str, str]
    best: list[str] = field(default_factory=list)


def run_labels(runs: list[RunDir]) -> list[str]:
    """Each run's name; a parent folder is added where two runs share a name (a copy)."""
    names = [run.name for run in runs]
    labels = [f"{run.path.parent.name}/{run.name}" if names.count(run.name) > 1 else run.name for run in runs]
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[index] = f"{label} ({seen[label]})"
    return labels


# --------------------------------------------------------------------------- curves


def _train_keys(runs: list[RunDir]) -> list[str]:
    found: dict[str, None] = {}
    for run in runs:
        for record in run.train:
            for key, value in record.items():
                if key not in _NOT_CURVES and key not in found and finite(value) is not None:
                    found[key] = None
    known = [key for key in (*LOSS_KEYS, "lr", *ASSIGNMENT_KEYS) if key in found]
    return known + sorted(key for key in found if key not in known)


def _group(key: str) -> str:
    if key in LOSS_KEYS:
        return "losses"
    if key in ASSIGNMENT_KEYS:
        return "assignment"
    return "other"


def _val_losses(record: dict[str, Any]) -> dict[str, float]:
    """``val_loss`` of an evaluation record (top level or inside ``eval``), as name -> value."""
    raw = record.get("val_loss", (record.get("eval") or {}).get("val_loss"))
    if isinstance(raw, dict):
        return {f"val_{key}" if not str(key).startswith("val") else str(key): v for key, v in raw.items()
                if finite(v) is not None}
    number = finite(raw)
    return {"val_loss": number} if number is not None else {}


def _eval_series(run: RunDir, pick: Callable[[dict[str, Any]], dict[str, float]]) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for record in run.evals:
        it = finite(record.get("iter"))
        if it is None:
            continue
        for key, value in pick(record).items():
            xs, ys = out.setdefault(key, ([], []))
            xs.append(it)
            ys.append(float(value))
    return out


def _ap_values(record: dict[str, Any]) -> dict[str, float]:
    metrics = record.get("eval") or {}
    out = {}
    for key in ("AP50", "AP"):
        value = finite(metrics.get(key))
        if value is not None and value >= 0:  # COCO's -1: undefined
            out[key] = value
    return out


def curves(runs: list[RunDir], labels: list[str]) -> list[Curve]:
    """Every metric at least one run recorded, with each run's points (runs lacking it left out)."""
    out = []
    for key in _train_keys(runs):
        series = {label: run.series(key) for label, run in zip(labels, runs)}
        out.append(Curve(key, _group(key), {label: xy for label, xy in series.items() if xy[0]}))
    evaluation: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for label, run in zip(labels, runs):
        for pick in (_ap_values, _val_losses):
            for key, xy in _eval_series(run, pick).items():
                evaluation.setdefault(key, {})[label] = xy
    order = ["AP50", "AP"] + sorted(key for key in evaluation if key not in ("AP50", "AP"))
    out.extend(Curve(key, "evaluation", evaluation[key]) for key in order if key in evaluation)
    return out


# --------------------------------------------------------------------------- the table


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ap(record: dict[str, Any] | None, key: str) -> float | None:
    if record is None:
        return None
    value = finite((record.get("eval") or {}).get(key))
    return value if value is not None and value >= 0 else None


def images_per_second(run: RunDir) -> float | None:
    """Training throughput: the median over records of global batch / iteration time."""
    world = finite(an.environment(run).get("world_size")) or 1
    rates = []
    for record in run.train:
        batch, seconds = finite(record.get("batch_size")), finite(record.get("time"))
        if batch and seconds and seconds > 0:
            rates.append(batch * world / seconds)
    return statistics.median(rates) if rates else None


def peak_memory(run: RunDir) -> tuple[float | None, str]:
    """(MB, what was measured): the CUDA peak when recorded, else the process RSS."""
    for key, what in (("mem_peak_mb", "CUDA peak"), ("peak_mb", "CUDA peak"), ("rss_mb", "RSS")):
        values = [v for v in (finite(r.get(key)) for r in run.train) if v is not None]
        if values:
            return max(values), what
    return None, ""


def _row(label: str, numbers: list[float | None], labels: list[str], better: str | None,
         fmt: Callable[[float | None], str] = _fmt) -> Row:
    values = {run: fmt(number) for run, number in zip(labels, numbers)}
    present = [n for n in numbers if n is not None]
    best: list[str] = []
    # Compared as shown: runs that read the same (11s and 11s) tie, and a row of ties has no best.
    if better and len(present) > 1 and len({fmt(n) for n in present}) > 1:
        target = fmt(max(present) if better == "high" else min(present))
        best = [run for run in labels if values[run] == target]
    return Row(label, values, best)


def table(runs: list[RunDir], labels: list[str]) -> list[Row]:
    """Final and best COCO numbers, per-class AP, length, time, throughput and memory."""
    finals = [run.evals[-1] if run.evals else None for run in runs]
    bests = [an.best_eval(run) for run in runs]
    rows = []
    for key in TABLE_AP_KEYS:
        rows.append(_row(f"final {key}", [_ap(r, key) for r in finals], labels, "high"))
    for key in ("AP", "AP50"):
        rows.append(_row(f"best {key}", [_ap(r, key) for r in bests], labels, "high"))
    classes: list[str] = []
    for record in finals:
        for name in ((record or {}).get("eval") or {}).get("per_class") or {}:
            if name not in classes:
                classes.append(name)
    for name in classes:
        numbers = []
        for record in finals:
            value = finite((((record or {}).get("eval") or {}).get("per_class") or {}).get(name))
            numbers.append(value if value is not None and value >= 0 else None)
        rows.append(_row(f"final AP {name}", numbers, labels, "high"))
    iterations = [an.last_iteration(run)[0] for run in runs]
    rows.append(_row("iterations", [float(i) if i is not None else None for i in iterations], labels, None,
                     lambda v: "n/a" if v is None else f"{int(v):,}"))
    rows.append(_row("wall time", [an.active_duration(run) for run in runs], labels, "low", an.fmt_duration))
    rows.append(_row("images/s (train)", [images_per_second(run) for run in runs], labels, "high",
                     lambda v: _fmt(v, 1)))
    memory = [peak_memory(run) for run in runs]
    what = {kind for _, kind in memory if kind}
    rows.append(_row(f"peak memory ({' / '.join(sorted(what)) or 'MB'})", [mb for mb, _ in memory], labels, "low",
                     lambda v: "n/a" if v is None else f"{v:,.0f} MB"))
    return rows


# --------------------------------------------------------------------------- config and data


def _flat(run: RunDir) -> dict[str, Any] | None:
    if run.config is None:
        return None
    return {f"{section}.{key}": value for section, values in run.config.model_dump().items() for key, value in values.items()}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_differences(runs: list[RunDir], labels: list[str]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the config fields whose values differ between the runs."""
    flats = [_flat(run) for run in runs]
    keys: list[str] = []
    for flat in flats:
        for key in flat or {}:
            if key not in keys:
                keys.append(key)
    rows = []
    for key in keys:
        values = [flat.get(key, "(not set)") if flat is not None else None for flat in flats]
        known = [json.dumps(v, sort_keys=True, default=str) for v in values if v is not None]
        if len(set(known)) > 1:
            rows.append([key, *("(no config)" if v is None else _short(v) for v in values)])
    return ["setting", *labels], rows


def dataset_fingerprint(run: RunDir) -> dict[str, Any] | None:
    """The dataset fingerprint recorded at the run's (latest) start, or None."""
    for event in reversed(run.events_of("run_started")):
        data = event.get("dataset")
        if isinstance(data, dict) and data:
            return data
    return None


def _split_identity(fingerprint: dict[str, Any], split: str) -> tuple[Any, Any] | None:
    data = fingerprint.get(split)
    return (data.get("sha256"), data.get("images")) if isinstance(data, dict) else None


def data_comparison(runs: list[RunDir], labels: list[str]) -> tuple[list[list[str]], list[str]]:
    """(table rows: run, split, source, images, hash; warnings) about the data each run saw."""
    prints = [dataset_fingerprint(run) for run in runs]
    rows: list[list[str]] = []
    warnings: list[str] = []
    for label, fingerprint in zip(labels, prints):
        if fingerprint is None:
            rows.append([label, "-", "not recorded (a run from before dataset fingerprints, or no events.jsonl)", "n/a", "n/a"])
            continue
        for split in ("train", "val"):
            data = fingerprint.get(split)
            if isinstance(data, dict):
                digest = str(data.get("sha256") or "n/a")
                rows.append([label, split, str(data.get("source", "")), str(data.get("images", "n/a")), digest[:12]])
    known = [(label, fp) for label, fp in zip(labels, prints) if fp is not None]
    for split in ("train", "val"):
        identities = {label: _split_identity(fp, split) for label, fp in known}
        if len(set(identities.values())) > 1:
            detail = "; ".join(f"{label}: {_describe(identity)}" for label, identity in identities.items())
            warnings.append(f"The runs did not see the same {split} data ({detail}): their metrics are not comparable as they stand.")
    classes = {label: tuple(fp.get("classes") or ()) for label, fp in known}
    if len(set(classes.values())) > 1:
        warnings.append("The runs have different class lists: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in classes.items()))
    missing = [label for label, fp in zip(labels, prints) if fp is None]
    if missing and known:
        warnings.append(f"No dataset fingerprint for {', '.join(missing)}: whether it saw the same data is unknown.")
    return rows, warnings


def _describe(identity: tuple[Any, Any] | None) -> str:
    if identity is None:
        return "none"
    digest, images = identity
    return f"{images} images, hash {str(digest)[:12]}"


# --------------------------------------------------------------------------- interventions

INTERVENTIONS = frozenset({
    "start", "pause", "resume", "stop", "lr-user", "lr-recovery", "lr-schedule", "nan-rewind", "oom-retry",
    "flag", "error", "finish", "command",
})
"""Timeline categories that are things done to (or by) the run, not routine evals/checkpoints."""


def interventions(run: RunDir) -> list[an.TimelineRow]:
    """The run's timeline restricted to :data:`INTERVENTIONS` (floods collapsed as in the report)."""
    return [row for row in an.timeline(run) if row.category in INTERVENTIONS]
