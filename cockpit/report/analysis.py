"""What a run directory means: status, duration, best AP, the checklist and the timeline.

Pure functions from a :class:`~cockpit.report.rundir.RunDir` to plain values; the
renderers (HTML, Markdown) only lay these out.
"""

from __future__ import annotations

import datetime as _dt
import shlex
from dataclasses import dataclass, field
from typing import Any

from cockpit.durations import format_duration
from cockpit.engine.events import WarningCategory
from cockpit.report.rundir import RunDir, finite


@dataclass(frozen=True)
class Status:
    """``finished``, ``stopped``, ``failed``, ``running`` or ``unknown``, and why we think so."""

    value: str
    reason: str = ""


def run_status(run: RunDir) -> Status:
    """The run's outcome from its last ``finished`` event (a later ``run_started`` = resumed)."""
    if not run.has_events:
        return Status("unknown", "events.jsonl is missing")
    last_finish = None
    for event in run.events:
        kind = event.get("kind")
        if kind == "finished":
            last_finish = event
        elif kind == "run_started":
            last_finish = None  # resumed after an earlier finish: running again
    if last_finish is not None:
        outcome = str(last_finish.get("outcome") or "").lower()
        if outcome not in ("finished", "stopped", "failed"):
            outcome = "failed" if str(last_finish.get("state")) == "FAILED" else "finished"
        return Status(outcome, str(last_finish.get("reason") or ""))
    states = run.events_of("state")
    if states and str(states[-1].get("state")) == "FAILED":
        return Status("failed", str(states[-1].get("reason") or ""))
    if states and str(states[-1].get("state")) == "PAUSED":
        return Status("running", "paused: " + str(states[-1].get("reason") or ""))
    # No finished event: either still running, or the process was killed outright.
    return Status("running", "no finished event yet (still running, or the process was killed)")


def fmt_time(stamp: float | None) -> str:
    if stamp is None:
        return "unknown"
    try:
        return _dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "unknown"


def fmt_duration(seconds: float | None) -> str:
    return format_duration(seconds, unknown="unknown", long=True)


def fmt_num(value: Any, digits: int = 3) -> str:
    """A metric for a table: ``n/a`` for missing, COCO's -1 and non-finite values."""
    number = finite(value)
    if number is None or number < 0:  # COCO writes -1 for "undefined" (no such objects)
        return "n/a"
    return f"{number:.{digits}f}"


def fmt_lr(value: Any) -> str:
    number = finite(value)
    return "n/a" if number is None else f"{number:.3g}"


def _event_times(run: RunDir) -> list[float]:
    return [t for t in (finite(e.get("time")) for e in run.events) if t is not None]


def start_time(run: RunDir) -> float | None:
    starts = [finite(e.get("time")) for e in run.events_of("run_started")]
    starts = [s for s in starts if s is not None]
    if starts:
        return starts[0]
    times = _event_times(run) or [t for t in (finite(r.get("timestamp")) for r in run.train[:1]) if t]
    return min(times) if times else None


def active_duration(run: RunDir) -> float | None:
    """Seconds the run was alive: each session (start or resume) to its last event, summed.

    Counting from the first start to the last event would include the hours between a
    crash and its resume.
    """
    sessions: list[list[float]] = []
    for event in run.events:
        stamp = finite(event.get("time"))
        if stamp is None:
            continue
        if event.get("kind") == "run_started" or not sessions:
            sessions.append([stamp, stamp])
        else:
            sessions[-1][1] = max(sessions[-1][1], stamp)
    # Records written after the last event (a run in progress) extend the last session.
    tail = finite(run.train[-1].get("timestamp")) if run.train else None
    if sessions and tail is not None:
        sessions[-1][1] = max(sessions[-1][1], tail)
    if not sessions:
        stamps = [finite(r.get("timestamp")) for r in (run.train[:1] + run.train[-1:])]
        stamps = [s for s in stamps if s is not None]
        return (stamps[-1] - stamps[0]) if len(stamps) == 2 else None
    return sum(end - begin for begin, end in sessions)


def environment(run: RunDir) -> dict[str, Any]:
    started = run.events_of("run_started")
    env = started[-1].get("environment") if started else None
    return dict(env) if isinstance(env, dict) else {}


def last_iteration(run: RunDir) -> tuple[int | None, int | None]:
    """(iteration, epoch) reached: the newest of the training records and the events."""
    iters = [finite(run.train[-1].get("iter"))] if run.train else []
    epochs = [finite(run.train[-1].get("epoch"))] if run.train else []
    for event in run.events_of("finished", "checkpoint", "eval"):
        iters.append(finite(event.get("iter")))
        epochs.append(finite(event.get("epoch")))
    iters_f = [i for i in iters if i is not None]
    epochs_f = [e for e in epochs if e is not None]
    return (int(max(iters_f)) if iters_f else None, int(max(epochs_f)) if epochs_f else None)


def best_eval(run: RunDir) -> dict[str, Any] | None:
    """The evaluation with the highest AP (the first one among ties)."""
    best = None
    best_ap = None
    for record in run.evals:
        ap = finite(record["eval"].get("AP"))
        if ap is None:
            continue
        if best_ap is None or ap > best_ap:
            best, best_ap = record, ap
    return best


def resume_command(run: RunDir) -> str:
    """The exact command that continues this run."""
    folder = str(run.path)
    return f"cockpit run {shlex.quote(folder + '/config.toml')} --resume {shlex.quote(folder)}"


# --------------------------------------------------------------------------- checklist


@dataclass(frozen=True)
class ChecklistRow:
    """A rule's final state."""

    rule: str
    title: str
    stage: str
    state: str
    severity: str
    evidence: str
    iter: int | None


@dataclass(frozen=True)
class FlagRecord:
    """One time a rule flagged something."""

    rule: str
    title: str
    stage: str
    severity: str
    iter: int | None
    time: float | None
    evidence: str
    likely_cause: str
    fix: str
    data: dict[str, Any] = field(default_factory=dict)


def checklist(run: RunDir) -> tuple[list[ChecklistRow], list[FlagRecord]]:
    """Every catalog rule's final state, plus each flag raised (pre-flight first, then live)."""
    from cockpit.diagnostics.catalog import ALL_RULES, RULES_BY_ID

    final: dict[str, ChecklistRow] = {}
    raised: list[FlagRecord] = []
    preflight = run.preflight or {}
    for verdict in preflight.get("verdicts") or []:
        if not isinstance(verdict, dict) or "rule" not in verdict:
            continue
        rule = str(verdict["rule"])
        info = RULES_BY_ID.get(rule)
        title = str(verdict.get("title") or (info.title if info else rule))
        state = str(verdict.get("state") or "not yet checked")
        split = verdict.get("split")
        evidence = str(verdict.get("evidence") or "")
        if split and evidence:
            evidence = f"[{split}] {evidence}"
        previous = final.get(rule)
        # A rule checked on both splits: FLAGGED on either wins over OK.
        if previous is None or previous.state != "FLAGGED" or state == "FLAGGED":
            if previous is not None and previous.state == "FLAGGED" and state == "FLAGGED":
                evidence = f"{previous.evidence}; {evidence}"
            final[rule] = ChecklistRow(rule, title, "preflight", state, str(verdict.get("severity") or ""), evidence, None)
        if state == "FLAGGED":
            raised.append(
                FlagRecord(
                    rule, title, "preflight", str(verdict.get("severity") or ""), None, None, evidence,
                    str(verdict.get("likely_cause") or ""), str(verdict.get("fix") or ""),
                )
            )
    for event in run.events_of("flag"):
        rule = str(event.get("rule") or "?")
        info = RULES_BY_ID.get(rule)
        title = str(event.get("title") or (info.title if info else rule))
        stage = info.stage if info else "live"
        state = str(event.get("status") or "not yet checked")
        iteration = finite(event.get("iter"))
        it = int(iteration) if iteration is not None else None
        final[rule] = ChecklistRow(rule, title, stage, state, str(event.get("severity") or ""), str(event.get("evidence") or ""), it)
        if state == "FLAGGED":
            data = event.get("data")
            raised.append(
                FlagRecord(
                    rule, title, stage, str(event.get("severity") or ""), it, finite(event.get("time")),
                    str(event.get("evidence") or ""), str(event.get("likely_cause") or ""),
                    str(event.get("fix") or ""), data if isinstance(data, dict) else {},
                )
            )
    rows = []
    for info in ALL_RULES:
        rows.append(final.pop(info.id, ChecklistRow(info.id, info.title, info.stage, "not yet checked", "", "", None)))
    rows.extend(final.values())  # rules this version's catalog does not know
    return rows, raised


# --------------------------------------------------------------------------- timeline


@dataclass
class TimelineRow:
    """One line of the event timeline."""

    time: float | None
    iter: int | None
    category: str
    """pause, resume, stop, lr-schedule, lr-user, lr-recovery, eval, checkpoint,
    skipped-sample, oom-retry, nan-rewind, warning, error, flag, start, finish, command."""
    text: str
    count: int = 1


_WARNING_CATEGORIES = {
    WarningCategory.SKIPPED_SAMPLE: "skipped-sample",
    WarningCategory.OOM_RETRY: "oom-retry",
    WarningCategory.NAN_REWIND: "nan-rewind",
}

TIMELINE_LIMIT = 400
"""Rows shown at most; a long run's warm-up and skipped samples are collapsed first."""


_ROW_KINDS = frozenset({"run_started", "state", "lr", "eval", "checkpoint", "warning", "error", "flag", "ack", "finished"})
"""Kinds that can make a timeline row (a long run's 100,000 ``step`` events never do)."""


def _row_for(event: dict[str, Any]) -> TimelineRow | None:
    kind = event.get("kind")
    if kind not in _ROW_KINDS:
        return None
    stamp = finite(event.get("time"))
    iteration = finite(event.get("iter"))
    it = int(iteration) if iteration is not None else None
    if kind == "run_started":
        resumed = event.get("resumed_from")
        start_iter = event.get("start_iter") or 0
        text = f"resumed from {resumed} at iteration {start_iter}" if resumed else "run started"
        return TimelineRow(stamp, int(start_iter) if isinstance(start_iter, int) else None, "start", text)
    if kind == "state":
        state = str(event.get("state"))
        previous = str(event.get("previous"))
        reason = str(event.get("reason") or "")
        category = {"PAUSED": "pause", "STOPPING": "stop", "FAILED": "error"}.get(state)
        if category is None:
            if state == "RUNNING" and previous == "PAUSED":
                category = "resume"
            else:
                return None  # IDLE->RUNNING, ->FINISHED: covered by start/finish rows
        text = f"{previous} -> {state}" + (f": {reason}" if reason else "")
        return TimelineRow(stamp, it, category, text)
    if kind == "lr":
        source = str(event.get("source") or "schedule")
        text = f"LR {fmt_lr(event.get('previous'))} -> {fmt_lr(event.get('lr'))} ({source})"
        return TimelineRow(stamp, it, f"lr-{source}", text)
    if kind == "eval":
        metrics = event.get("metrics") or {}
        text = f"evaluation: AP {fmt_num(metrics.get('AP'))}, AP50 {fmt_num(metrics.get('AP50'))}"
        return TimelineRow(stamp, it, "eval", text)
    if kind == "checkpoint":
        best = " (new best)" if event.get("best") else ""
        reason = event.get("reason") or ""
        text = f"checkpoint {event.get('path', '')}{best}" + (f": {reason}" if reason else "")
        return TimelineRow(stamp, it, "checkpoint", text)
    if kind == "warning":
        category = _WARNING_CATEGORIES.get(str(event.get("category")), "warning")
        return TimelineRow(stamp, it, category, str(event.get("message") or ""))
    if kind == "error":
        return TimelineRow(stamp, it, "error", str(event.get("summary") or "error"))
    if kind == "flag" and event.get("status") == "FLAGGED":
        text = f"flag {event.get('rule')}: {event.get('title', '')} -- {event.get('evidence', '')}"
        return TimelineRow(stamp, it, "flag", text)
    if kind == "ack" and event.get("ok") is False:
        return TimelineRow(stamp, it, "command", f"command {event.get('command')} refused: {event.get('message', '')}")
    if kind == "finished":
        outcome = event.get("outcome") or event.get("state")
        reason = event.get("reason") or ""
        return TimelineRow(stamp, it, "finish", f"run {outcome}" + (f": {reason}" if reason else ""))
    return None


# Categories that can come in floods (warm-up changes LR every iteration; a bad shard
# skips many samples): consecutive rows of these collapse into one.
_COLLAPSIBLE = {"lr-schedule", "skipped-sample", "warning", "oom-retry"}


def timeline(run: RunDir) -> list[TimelineRow]:
    """The run's notable events in order, floods collapsed."""
    rows: list[TimelineRow] = []
    for event in run.events:
        row = _row_for(event)
        if row is None:
            continue
        last = rows[-1] if rows else None
        if last is not None and row.category in _COLLAPSIBLE and last.category == row.category:
            last.count += 1
            if row.category == "lr-schedule":
                # Keep the first "from" and the newest "to".
                first_from = last.text.split(" -> ")[0]
                last.text = f"{first_from} -> {row.text.split(' -> ', 1)[1]}"
            else:
                last.text = f"{last.text.split(' [+')[0]} [+{last.count - 1} more; last: {row.text}]"
            continue
        rows.append(row)
    if not run.has_events:
        # Without events.jsonl the evaluations in metrics.jsonl are all the timeline we have.
        for record in run.evals:
            it = finite(record.get("iter"))
            metrics = record["eval"]
            rows.append(
                TimelineRow(
                    finite(record.get("timestamp")), int(it) if it is not None else None, "eval",
                    f"evaluation: AP {fmt_num(metrics.get('AP'))}, AP50 {fmt_num(metrics.get('AP50'))}",
                )
            )
    return rows


def timeline_counts(run: RunDir) -> dict[str, int]:
    """How many of each notable event (uncollapsed), for the timeline's one-line summary."""
    counts: dict[str, int] = {}
    for event in run.events:
        row = _row_for(event)
        if row is not None:
            counts[row.category] = counts.get(row.category, 0) + 1
    return counts
