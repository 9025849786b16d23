"""What ``cockpit run`` prints when it ends: where the run is and what to do next.

Read from the run directory's ``events.jsonl`` through the run-file codec (torch-free),
so the TUI, the headless loop and a restarted run all print the same lines.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from cockpit.runfiles import layout
from cockpit.runfiles.jsonl import EVENT_SCHEMA, iter_jsonl


@dataclass(frozen=True)
class RunSummary:
    """The facts the exit lines need."""

    run_dir: Path
    outcome: str
    iteration: int
    checkpoint: str | None
    checkpoint_iter: int | None
    best_ap50: float | None
    best_ap: float | None
    best_iter: int | None


def summarize(run_dir: Path) -> RunSummary:
    """Scan ``run_dir/events.jsonl`` for the last checkpoint, the best evaluation and the outcome."""
    outcome, iteration = "", 0
    checkpoint = checkpoint_iter = None
    best = best_ap = best_iter = None
    # The run-file codec skips torn, too deep and wrongly typed lines.
    for event in iter_jsonl(Path(run_dir) / layout.EVENTS, EVENT_SCHEMA):
        kind = event.get("kind")
        if isinstance(event.get("iter"), int):
            iteration = max(iteration, event["iter"])
        if kind == "checkpoint" and isinstance(event.get("path"), str):
            checkpoint, checkpoint_iter = event["path"], event.get("iter")
        elif kind == "eval":
            metrics = event.get("metrics") or {}
            ap50 = metrics.get("AP50")
            if isinstance(ap50, (int, float)) and (best is None or ap50 > best):
                best, best_iter = float(ap50), event.get("iter")
                best_ap = metrics.get("AP") if isinstance(metrics.get("AP"), (int, float)) else None
        elif kind == "finished":
            outcome = str(event.get("outcome") or "")
    return RunSummary(Path(run_dir), outcome, iteration, checkpoint, checkpoint_iter, best, best_ap, best_iter)


def set_flags(changes: dict[str, object]) -> list[str]:
    """``--set section.key=value`` arguments (TOML values, shell-quoted) for ``changes``."""
    import tomli_w

    flags = []
    for key, value in sorted(changes.items()):
        if value is None:
            continue
        text = tomli_w.dumps({"v": value}).strip()[len("v = "):]
        flags += ["--set", shlex.quote(f"{key}={text}")]
    return flags


def exit_lines(run_dir: Path, config_path: Path | None, changes: dict[str, object] | None = None) -> list[str]:
    """The lines printed on exit: run dir, last checkpoint, best AP, report and resume commands.

    ``changes``: config fields edited in the cockpit since it started (``{"data.batch_size": 2}``),
    passed on as ``--set`` so the resume command continues with them."""
    facts = summarize(run_dir)
    where = shlex.quote(str(run_dir))
    lines = [f"run dir:    {run_dir}" + (f" ({facts.outcome} at iteration {facts.iteration})" if facts.outcome else "")]
    if facts.checkpoint:
        lines.append(f"checkpoint: {facts.checkpoint} (iteration {facts.checkpoint_iter})")
    else:
        lines.append("checkpoint: none written")
    if facts.best_ap50 is not None:
        ap = f", AP {facts.best_ap:.3f}" if facts.best_ap is not None else ""
        lines.append(f"best AP50:  {facts.best_ap50:.3f}{ap} (iteration {facts.best_iter})")
    else:
        lines.append("best AP50:  no evaluation yet")
    lines.append(f"report:     cockpit report {where}")
    if facts.checkpoint and config_path is not None:
        flags = " ".join(set_flags(changes or {}))
        lines.append(f"resume:     cockpit run {shlex.quote(str(config_path))}{' ' + flags if flags else ''} --resume {where}")
    return lines
