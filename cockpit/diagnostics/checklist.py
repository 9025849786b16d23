"""The debugging checklist: every catalog rule's latest state, as the user sees it.

:class:`Checklist` starts with every rule of the catalog "not yet checked" and is updated
from :class:`FlagRaised` events (live rules) or verdicts (the pre-flight report). It is
pure state -- no I/O, no UI -- so the TUI pane, the headless printer and the report all
render the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from cockpit.diagnostics.catalog import ALL_RULES, RULES_BY_ID
from cockpit.diagnostics.flags import CheckState, Verdict
from cockpit.engine.events import FlagRaised, Severity

_SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


@dataclass(frozen=True)
class ChecklistRow:
    """One rule's current state; ``severity`` is None unless the row is FLAGGED."""

    rule: str
    title: str
    stage: str
    state: CheckState = CheckState.NOT_CHECKED
    severity: Severity | None = None
    evidence: str = ""
    likely_cause: str = ""
    fix: str = ""
    iter: int = 0
    split: str | None = None
    """Pre-flight rows: the split the worst verdict came from."""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.state == CheckState.FLAGGED

    @property
    def rank(self) -> int:
        """0 not checked / OK, then info < warning < error: larger is worse."""
        return _SEVERITY_RANK.get(self.severity, 0) if self.flagged else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title,
            "stage": self.stage,
            "state": self.state.value,
            "severity": self.severity.value if self.severity else None,
            "evidence": self.evidence,
            "likely_cause": self.likely_cause,
            "fix": self.fix,
            "iter": self.iter,
            "split": self.split,
            "data": dict(self.data),
        }


def _state(value: str | CheckState) -> CheckState:
    if isinstance(value, CheckState):
        return value
    try:
        return CheckState(value)
    except ValueError:
        return CheckState[str(value).upper()]


class Checklist:
    """Rule id -> latest :class:`ChecklistRow`, in catalog order (unknown rules appended)."""

    def __init__(self) -> None:
        self._rows: dict[str, ChecklistRow] = {
            info.id: ChecklistRow(info.id, info.title, info.stage) for info in ALL_RULES
        }

    def _base(self, rule: str, title: str) -> ChecklistRow:
        row = self._rows.get(rule)
        if row is None:
            info = RULES_BY_ID.get(rule)
            row = ChecklistRow(rule, title or rule, info.stage if info else "live")
        return row

    def apply(self, event: FlagRaised) -> ChecklistRow:
        """Take a rule's new state from its event; returns the updated row."""
        state = _state(event.status)
        row = replace(
            self._base(event.rule, event.title),
            title=event.title or self._base(event.rule, event.title).title,
            state=state,
            severity=Severity(event.severity) if state == CheckState.FLAGGED else None,
            evidence=event.evidence,
            likely_cause=event.likely_cause if state == CheckState.FLAGGED else "",
            fix=event.fix if state == CheckState.FLAGGED else "",
            iter=event.iter,
            data=dict(event.data),
        )
        self._rows[event.rule] = row
        return row

    def apply_verdict(self, verdict: Verdict, *, iteration: int = 0, split: str | None = None) -> ChecklistRow:
        """Take a rule's new state straight from a verdict."""
        row = self.apply(verdict.to_event(iteration))
        if split is not None:
            row = self._rows[verdict.rule] = replace(row, split=split)
        return row

    def apply_preflight(self, verdicts: Iterable[tuple[str | None, Verdict]]) -> None:
        """Merge pre-flight verdicts of several splits: each row shows its worst split
        (FLAGGED beats OK beats NOT_CHECKED; error beats warning beats info)."""
        best: dict[str, tuple[tuple[int, int], str | None, Verdict]] = {}
        for split, verdict in verdicts:
            flag = verdict.flag
            score = (
                {CheckState.NOT_CHECKED: 0, CheckState.OK: 1, CheckState.FLAGGED: 2}[verdict.state],
                _SEVERITY_RANK.get(flag.severity, 0) if flag else 0,
            )
            held = best.get(verdict.rule)
            if held is None or score > held[0]:
                best[verdict.rule] = (score, split, verdict)
        for _, split, verdict in best.values():
            self.apply_verdict(verdict, split=split)

    def get(self, rule: str) -> ChecklistRow:
        return self._rows[rule]

    def rows(self, stage: str | None = None) -> list[ChecklistRow]:
        """Every row in catalog order (only ``preflight`` or ``live`` ones when asked)."""
        return [r for r in self._rows.values() if stage is None or r.stage == stage]

    def flagged(self) -> list[ChecklistRow]:
        """FLAGGED rows, worst first."""
        return sorted((r for r in self._rows.values() if r.flagged), key=lambda r: -r.rank)

    def counts(self) -> dict[str, int]:
        """How many rows are ok / not_checked / info / warning / error."""
        out = {"ok": 0, "not_checked": 0, "info": 0, "warning": 0, "error": 0}
        for row in self._rows.values():
            if row.flagged and row.severity is not None:
                out[row.severity.value] += 1
            elif row.state == CheckState.OK:
                out["ok"] += 1
            else:
                out["not_checked"] += 1
        return out
