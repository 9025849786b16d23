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

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cockpit.report.columnar import TrainTable, read_metrics
from cockpit.runfiles import layout, records
from cockpit.runfiles.codec import finite as _finite
from cockpit.runfiles.codec import number as _number
from cockpit.runfiles.jsonl import EVENT_SCHEMA, METRICS_SCHEMA, JsonlFile, read_json, read_jsonl

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["COCO_KEYS", "LOSS_KEYS", "MEMORY_KEYS", "JsonlFile", "RunDir", "finite", "read_jsonl", "read_run_dir"]

LOSS_KEYS = ("loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
"""The total and the four Faster R-CNN loss terms, in the order the report shows them."""

MEMORY_KEYS = tuple(records.memory_column(k) for k in ("allocated_mb", "reserved_mb", "peak_mb", "rss_mb"))
"""The memory columns the report plots, named as the writer names them."""

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
"""The 12 standard COCO numbers, as the engine names them."""


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
    train: Sequence[dict[str, Any]] = field(default_factory=list)
    """Training records (``kind == "train"``) in file order: a list, or a
    :class:`~cockpit.report.columnar.TrainTable` when read as columns."""
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
    skipped: list[str] = field(default_factory=list)
    """One line per JSON-lines file with skipped lines (also in ``problems``)."""

    @property
    def name(self) -> str:
        return self.path.name

    def events_of(self, *kinds: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("kind") in kinds]

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(iterations, values) of one metric over the training records that have it."""
        xs, ys = self.column(key)
        return xs.tolist(), ys.tolist()

    def column(self, key: str) -> tuple["np.ndarray", "np.ndarray"]:
        """:meth:`series` as float arrays (read once per key and kept)."""
        cache = self.__dict__.setdefault("_columns", {})
        if cache.get(None, (None,))[0] is not self.train:
            cache.clear()
            cache[None] = (self.train, None)
        if key not in cache:
            cache[key] = self._read_column(key, cache)
        return cache[key]

    def _read_column(self, key: str, cache: dict) -> tuple["np.ndarray", "np.ndarray"]:
        import numpy as np

        if isinstance(self.train, TrainTable):
            values = self.train.column(key)
            if values is None:
                return np.empty(0), np.empty(0)
            return self.train.column("iter"), values
        if _ITERS not in cache:
            # The iteration column is shared by every series: gathered once per history.
            cache[_ITERS] = [record.get("iter") for record in self.train]
        return _column(cache[_ITERS], [record.get(key) for record in self.train])


_ITERS = (None, "iter")
"""The column cache's slot for the raw iterations (no metric key is a tuple)."""


_PLAIN = frozenset({int, float})
_PLAIN_OR_NONE = frozenset({int, float, type(None)})


def _column(iters: list[Any], values: list[Any]) -> tuple["np.ndarray", "np.ndarray"]:
    """(iterations, values) as float arrays; pairs lacking either are left out."""
    import numpy as np

    kinds, iter_kinds = set(map(type, values)), set(map(type, iters))
    if not kinds - {type(None)}:
        return np.empty(0), np.empty(0)  # a column this run never logged (most telemetry keys)
    # The common case, every value a plain number, converts in bulk (100,000 records x 10
    # series took seconds one by one); a column logged on some records only (None
    # elsewhere) too; anything else goes through the general converter.
    if kinds <= _PLAIN and iter_kinds <= _PLAIN:
        return np.asarray(iters, dtype=float), np.asarray(values, dtype=float)
    if kinds <= _PLAIN_OR_NONE and iter_kinds <= _PLAIN_OR_NONE:
        # None becomes NaN in a float array, so presence is read from the objects, not the floats.
        keep = (np.asarray(values, dtype=object) != None) & (np.asarray(iters, dtype=object) != None)  # noqa: E711
        return np.asarray(iters, dtype=float)[keep], np.asarray(values, dtype=float)[keep]
    xs: list[float] = []
    ys: list[float] = []
    for it, value in zip(iters, values):
        value, it = _number(value), _number(it)
        if value is not None and it is not None:
            xs.append(it)
            ys.append(value)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _records_from_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``metrics.jsonl``-shaped training records from the ``step`` events, built by the
    writer's own function (so the columns, ``mem_`` prefix included, are the same)."""
    return [records.train_record(event) for event in events if event.get("kind") == "step"]


def _compact_steps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with each run of consecutive ``step`` events cut to the three whose times
    the report reads: the first, the earliest and the latest (where a session starts and
    ends; the run's first time). The report reads nothing else of a step event, and the
    100,000 of a long run were walked by every timeline, status and duration function."""
    kept: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for event in events:
        if event.get("kind") == "step":
            steps.append(event)
            continue
        if steps:
            kept += _step_extremes(steps)
            steps = []
        kept.append(event)
    return kept + _step_extremes(steps)


def _step_extremes(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stamps = [(stamp, index) for index, stamp in enumerate(map(_finite, (e.get("time") for e in steps))) if stamp is not None]
    if not stamps:
        return []  # no time to read: every reader skips such events
    return [steps[index] for index in sorted({stamps[0][1], min(stamps)[1], max(stamps)[1]})]


def _load_config(run: RunDir) -> None:
    path = run.path / layout.CONFIG
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
            run.config = load_config_text(text, base_dir=run.path, source=layout.CONFIG)
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
    folder = run.path / layout.PREVIEWS
    if not folder.is_dir():
        return
    for png in sorted(folder.glob("val-*.png")):
        data, error = read_json(png.with_suffix(".json"))
        if error:
            run.problems.append(f"previews/{png.with_suffix('.json').name}: {error}; image shown without boxes")
            data = {}
        run.previews.append(Preview(index=png.stem[len("val-") :], png=png, data=data if isinstance(data, dict) else {}))

    def order(preview: Preview) -> tuple[int, str]:
        return (int(preview.index), "") if preview.index.isdigit() else (1 << 30, preview.index)

    run.previews.sort(key=order)


def _load_records(run: RunDir) -> None:
    """events.jsonl and metrics.jsonl: the training and evaluation records, whatever survived."""
    # Step events are skimmed (kind, time, iter): metrics.jsonl holds their values.
    events = read_jsonl(run.path / layout.EVENTS, EVENT_SCHEMA, skim=("step",))
    run.skipped += events.describe(layout.EVENTS)
    run.events = _compact_steps(events.records)
    run.has_events = events.exists
    if not events.exists:
        run.missing.append(
            "events.jsonl is missing: no event timeline, environment or flag history; "
            "the run's status is unknown."
        )

    table, metrics = read_metrics(run.path / layout.METRICS, METRICS_SCHEMA)
    run.skipped += metrics.describe(layout.METRICS)
    run.problems += run.skipped
    train: list[dict[str, Any]] = []
    for record in metrics.records:
        kind = record.get("kind", "train")
        if kind == "train":
            train.append(record)
        elif kind == "eval" and isinstance(record.get("eval"), dict):
            run.evals.append(record)
    run.train = table if table is not None else train
    if not metrics.exists:
        run.missing.append("metrics.jsonl is missing.")
    # Step and eval events duplicate metrics.jsonl; use them only when it has none.
    if not run.train:
        run.train = _records_from_events(read_jsonl(run.path / layout.EVENTS, EVENT_SCHEMA).records)
        if run.train:
            run.problems.append("metrics.jsonl has no training records; using the step events of events.jsonl")
        else:
            run.missing.append("No training records yet: the loss, LR and memory plots are empty.")
    if not run.evals:
        run.evals = [records.eval_record(e) for e in run.events_of("eval")]
        if not run.evals:
            run.missing.append("No evaluation yet: no AP, evaluation table or per-class AP.")
    # A resume appends: what a killed process logged past its checkpoint is not the run's history.
    run.train, dropped = _monotonic(run.train)
    run.evals, dropped_evals = records.monotonic(run.evals, keep_equal=True)
    if dropped + dropped_evals:
        run.problems.append(
            f"{dropped + dropped_evals} record(s) logged after a checkpoint that a resume went back to "
            "are left out (the resumed run logged those iterations again)"
        )


def _monotonic(train: Sequence[dict[str, Any]]) -> tuple[Sequence[dict[str, Any]], int]:
    """:func:`records.monotonic`; a table whose iterations only grow is kept as it is
    (checked on its column instead of 100,000 parsed records)."""
    import numpy as np

    if isinstance(train, TrainTable):
        iters = train.column("iter")
        if iters is not None and bool(np.all(np.diff(iters) > 0)):
            return train, 0
    return records.monotonic(list(train))


def read_run_dir(path: str | Path) -> RunDir:
    """Read a run directory; never raises for damaged or missing files (see the module doc)."""
    run = RunDir(path=Path(path).expanduser().resolve())
    if not run.path.is_dir():
        run.missing.append(f"{run.path} is not a folder: nothing to report.")
        return run

    _load_records(run)
    _load_config(run)

    preflight, error = read_json(run.path / layout.PREFLIGHT)
    if isinstance(preflight, dict):
        run.preflight = preflight
    elif error == "missing":
        run.missing.append("preflight.json is missing: no pre-flight dataset summary (run with the check on).")
    else:
        run.problems.append(f"preflight.json: {error or 'not a JSON object'}")

    for name in ("last", "best"):
        ckpt = run.path / layout.CHECKPOINTS / f"{name}.pt"
        if ckpt.is_file():
            stat = ckpt.stat()
            run.checkpoints[name] = CheckpointFile(name, ckpt, stat.st_size, stat.st_mtime)
    if "last" not in run.checkpoints:
        run.missing.append("No checkpoint (checkpoints/last.pt): the run cannot be resumed from this folder yet.")

    pred_dir = run.path / layout.PREDICTIONS
    if pred_dir.is_dir():
        run.predictions = sorted(pred_dir.glob("*.json"))
    _load_previews(run)
    run.has_log = (run.path / layout.LOG).is_file()
    return run


def finite(value: Any) -> float | None:
    """The value as a finite float, else None (COCO's -1 'undefined' is kept as -1)."""
    return _finite(value)
