"""Tolerant readers of a run directory (the engine's contract, issue 3 section 3).

A report is most wanted when something went wrong, so nothing here raises on a damaged
run: a truncated last line in ``metrics.jsonl`` (the process was killed mid-write), a
missing ``events.jsonl``, no evaluation, no checkpoint or an unreadable ``config.toml``
are all recorded in :attr:`RunDir.missing` / :attr:`RunDir.problems` and the report says
so in the section concerned.

Events are kept as plain dicts rather than rebuilt with ``event_from_dict``: a report must
also read run directories written by older or newer versions, whose events may carry
kinds or fields this version does not know.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOSS_KEYS = ("loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
"""The total and the four Faster R-CNN loss terms, in the order the report shows them."""

MEMORY_KEYS = ("mem_allocated_mb", "mem_reserved_mb", "mem_peak_mb", "rss_mb")

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
"""The 12 standard COCO numbers, as the engine names them."""


@dataclass
class JsonlFile:
    """The records of a JSON-lines file and what could not be read from it."""

    records: list[dict[str, Any]] = field(default_factory=list)
    exists: bool = False
    bad_lines: list[int] = field(default_factory=list)
    """1-based numbers of lines that are not a JSON object (skipped)."""
    truncated_tail: bool = False
    """The last line is cut off -- normal for a run killed mid-write, or still being written."""
    error: str | None = None


def read_jsonl(path: Path) -> JsonlFile:
    """Read one JSON object per line, skipping (and counting) lines that do not parse."""
    result = JsonlFile()
    if not path.is_file():
        return result
    result.exists = True
    try:
        raw = path.read_bytes()
    except OSError as error:
        result.error = f"cannot read: {error}"
        return result
    # errors="replace": a torn multi-byte character must not lose the whole file.
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    ends_with_newline = text.endswith("\n")
    loads = json.loads
    records = result.records
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except ValueError:
            if number == last and not ends_with_newline:
                result.truncated_tail = True
            else:
                result.bad_lines.append(number + 1)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            result.bad_lines.append(number + 1)
    return result


def _read_json(path: Path) -> tuple[Any, str | None]:
    if not path.is_file():
        return None, "missing"
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace")), None
    except (OSError, ValueError) as error:
        return None, f"unreadable ({error.__class__.__name__}: {error})"


def _number(value: Any) -> float | None:
    """A float for plotting, or None for anything that is not a number (NaN is kept)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        # json.dumps writes NaN/Infinity bare, but other writers quote them.
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass
class CheckpointFile:
    """A checkpoint file on disk (not loaded: that would need torch and can take seconds)."""

    name: str
    path: Path
    size_bytes: int
    mtime: float


@dataclass
class Preview:
    """One engine-written preview: ``previews/val-<index>.png`` and its JSON boxes."""

    index: str
    png: Path
    data: dict[str, Any]


@dataclass
class RunDir:
    """Everything the report reads from a run directory, already parsed."""

    path: Path
    config_text: str | None = None
    config: Any = None
    """A validated :class:`cockpit.config.Config`, or None when unreadable."""
    config_error: str | None = None
    train: list[dict[str, Any]] = field(default_factory=list)
    """Training records (``kind == "train"``) in file order."""
    evals: list[dict[str, Any]] = field(default_factory=list)
    """Evaluation records: ``iter``, ``epoch``, ``eval`` (the COCO numbers and ``per_class``)."""
    events: list[dict[str, Any]] = field(default_factory=list)
    has_events: bool = False
    preflight: dict[str, Any] | None = None
    checkpoints: dict[str, CheckpointFile] = field(default_factory=dict)
    predictions: list[Path] = field(default_factory=list)
    previews: list[Preview] = field(default_factory=list)
    has_log: bool = False
    missing: list[str] = field(default_factory=list)
    """What the run directory lacks, one sentence each (shown in the report)."""
    problems: list[str] = field(default_factory=list)
    """What was damaged but worked around (skipped lines, unreadable files)."""

    @property
    def name(self) -> str:
        return self.path.name

    def events_of(self, *kinds: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("kind") in kinds]

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(iterations, values) of one metric over the training records that have it."""
        xs: list[float] = []
        ys: list[float] = []
        # Hot loop (100,000 records x 10 series): take plain floats/ints as they are and
        # only call the general converter for anything else.
        for record in self.train:
            value = record.get(key)
            if type(value) is not float:
                value = _number(value)
                if value is None:
                    continue
            it = record.get("iter")
            if type(it) is not int:
                it = _number(it)
                if it is None:
                    continue
            xs.append(it)
            ys.append(value)
        return xs, ys


def _train_record_from_step(event: dict[str, Any]) -> dict[str, Any]:
    """A ``metrics.jsonl``-shaped record from a ``step`` event (when only events.jsonl has steps)."""
    record: dict[str, Any] = {"kind": "train"}
    for key in ("iter", "epoch", "lr", "loss", "data_time", "grad_norm", "batch_size"):
        if key in event:
            record[key] = event[key]
    record["time"] = event.get("iter_time")
    record["timestamp"] = event.get("time")
    for name, value in (event.get("losses") or {}).items():
        record.setdefault(name, value)
    for name, value in (event.get("memory") or {}).items():
        record.setdefault(name, value)
    return record


def _eval_record_from_event(event: dict[str, Any]) -> dict[str, Any]:
    metrics = dict(event.get("metrics") or {})
    metrics["per_class"] = dict(event.get("per_class") or {})
    return {
        "kind": "eval",
        "iter": event.get("iter"),
        "epoch": event.get("epoch"),
        "eval": metrics,
        "timestamp": event.get("time"),
    }


def _describe_jsonl(name: str, data: JsonlFile, problems: list[str]) -> None:
    if data.error:
        problems.append(f"{name}: {data.error}")
    if data.truncated_tail:
        problems.append(f"{name}: the last line is truncated (run killed mid-write or still writing); skipped")
    if data.bad_lines:
        shown = ", ".join(str(n) for n in data.bad_lines[:10])
        more = f" and {len(data.bad_lines) - 10} more" if len(data.bad_lines) > 10 else ""
        problems.append(f"{name}: {len(data.bad_lines)} unreadable line(s) skipped (line {shown}{more})")


def _load_config(run: RunDir) -> None:
    path = run.path / "config.toml"
    text: str | None = None
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            run.problems.append(f"config.toml: cannot read ({error})")
    else:
        run.missing.append("config.toml is missing: the config and its differences from the defaults are not shown.")
    run.config_text = text
    # Imported here: pydantic is only needed once a config exists, and `cockpit --help`
    # must not pay for it.
    from cockpit.config.loader import ConfigError, config_from_dict, load_config_text

    if text is not None:
        try:
            run.config = load_config_text(text, base_dir=run.path, source="config.toml")
            return
        except ConfigError as error:
            run.config_error = str(error)
            run.problems.append(f"config.toml does not validate: {error}")
    # Fall back to the resolved config the engine put in run_started.
    for event in reversed(run.events_of("run_started")):
        data = event.get("config")
        if isinstance(data, dict) and data:
            try:
                run.config = config_from_dict(data, base_dir=run.path, source="events.jsonl run_started")
                if run.config_text is None:
                    import tomli_w

                    run.config_text = tomli_w.dumps(data)
                return
            except (ConfigError, TypeError, ValueError):
                continue


def _load_previews(run: RunDir) -> None:
    folder = run.path / "previews"
    if not folder.is_dir():
        return
    for png in sorted(folder.glob("val-*.png")):
        data, error = _read_json(png.with_suffix(".json"))
        if error:
            run.problems.append(f"previews/{png.with_suffix('.json').name}: {error}; image shown without boxes")
            data = {}
        run.previews.append(Preview(index=png.stem[len("val-") :], png=png, data=data if isinstance(data, dict) else {}))

    def order(preview: Preview) -> tuple[int, str]:
        return (int(preview.index), "") if preview.index.isdigit() else (1 << 30, preview.index)

    run.previews.sort(key=order)


def read_run_dir(path: str | Path) -> RunDir:
    """Read a run directory; never raises for damaged or missing files (see the module doc)."""
    run = RunDir(path=Path(path).expanduser().resolve())
    if not run.path.is_dir():
        run.missing.append(f"{run.path} is not a folder: nothing to report.")
        return run

    events = read_jsonl(run.path / "events.jsonl")
    _describe_jsonl("events.jsonl", events, run.problems)
    run.events = events.records
    run.has_events = events.exists
    if not events.exists:
        run.missing.append(
            "events.jsonl is missing: no event timeline, environment or flag history; "
            "the run's status is unknown."
        )

    metrics = read_jsonl(run.path / "metrics.jsonl")
    _describe_jsonl("metrics.jsonl", metrics, run.problems)
    for record in metrics.records:
        kind = record.get("kind", "train")
        if kind == "train":
            run.train.append(record)
        elif kind == "eval" and isinstance(record.get("eval"), dict):
            run.evals.append(record)
    if not metrics.exists:
        run.missing.append("metrics.jsonl is missing.")
    # Step and eval events duplicate metrics.jsonl; use them only when it has none.
    if not run.train:
        run.train = [_train_record_from_step(e) for e in run.events_of("step")]
        if run.train:
            run.problems.append("metrics.jsonl has no training records; using the step events of events.jsonl")
        else:
            run.missing.append("No training records yet: the loss, LR and memory plots are empty.")
    if not run.evals:
        run.evals = [_eval_record_from_event(e) for e in run.events_of("eval")]
        if not run.evals:
            run.missing.append("No evaluation yet: no AP, evaluation table or per-class AP.")

    _load_config(run)

    preflight, error = _read_json(run.path / "preflight.json")
    if isinstance(preflight, dict):
        run.preflight = preflight
    elif error == "missing":
        run.missing.append("preflight.json is missing: no pre-flight dataset summary (run with the check on).")
    else:
        run.problems.append(f"preflight.json: {error or 'not a JSON object'}")

    for name in ("last", "best"):
        ckpt = run.path / "checkpoints" / f"{name}.pt"
        if ckpt.is_file():
            stat = ckpt.stat()
            run.checkpoints[name] = CheckpointFile(name, ckpt, stat.st_size, stat.st_mtime)
    if "last" not in run.checkpoints:
        run.missing.append("No checkpoint (checkpoints/last.pt): the run cannot be resumed from this folder yet.")

    pred_dir = run.path / "predictions"
    if pred_dir.is_dir():
        run.predictions = sorted(pred_dir.glob("*.json"))
    _load_previews(run)
    run.has_log = (run.path / "cockpit.log").is_file()
    return run


def finite(value: Any) -> float | None:
    """The value as a finite float, else None (COCO's -1 'undefined' is kept as -1)."""
    number = _number(value)
    if number is None or not math.isfinite(number):
        return None
    return number
