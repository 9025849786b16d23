"""The pre-flight's verdicts (plain dicts, as in ``preflight.json``) as checklist flag events.

Shared by the trainer, which publishes them when the run starts (so ``events.jsonl`` and
an attached cockpit have them), and the cockpit's start-up, which publishes each split's
as soon as it is checked -- before torch is even imported.
"""

from __future__ import annotations

from typing import Any, Iterable

from cockpit.engine.events import CheckState, FlagRaised, Severity


def preflight_flags(verdicts: Iterable[dict[str, Any]], iteration: int = 0) -> list[FlagRaised]:
    """One event per verdict, the flagged ones last: the checklist keeps one row per rule,
    so a rule flagged in one split must not be hidden by the same rule clean in another."""
    ordered = sorted(verdicts, key=lambda v: v.get("state") == CheckState.FLAGGED.value)
    events = []
    for verdict in ordered:
        split = verdict.get("split")
        events.append(
            FlagRaised(
                rule=verdict["rule"],
                title=verdict.get("title", verdict["rule"]),
                status=CheckState(verdict.get("state", CheckState.OK.value)),
                severity=Severity(verdict.get("severity") or "info"),
                evidence=(f"[{split}] " if split else "") + (verdict.get("evidence") or ""),
                likely_cause=verdict.get("likely_cause") or "",
                fix=verdict.get("fix") or "",
                iter=iteration,
            )
        )
    return events
