"""The verdict of a diagnostic rule.

Every rule -- pre-flight or live -- is a pure function returning a :class:`Verdict`:
``OK`` with the evidence it looked at, ``FLAGGED`` with a :class:`Flag`, or
``NOT_CHECKED`` when it has not seen enough yet. The checklist pane, the events stream,
the headless output, ``cockpit check`` and the report all show the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cockpit.engine.events import CheckState, FlagRaised, Severity

__all__ = ["CheckState", "Flag", "Verdict"]


@dataclass(frozen=True)
class Flag:
    """A symptom found: what, how sure (evidence), why it likely happens, what to do."""

    rule: str
    """Stable rule id, e.g. ``nonfinite_loss``."""
    title: str
    """The symptom as the checklist names it, e.g. "Loss is NaN/Inf"."""
    severity: Severity
    evidence: str
    """Numbers, file names, sample indices that show the symptom."""
    likely_cause: str
    fix: str
    data: dict[str, Any] = field(default_factory=dict)
    """Machine-readable extras (e.g. a score histogram) for panes and reports."""


@dataclass(frozen=True)
class Verdict:
    """A rule's answer; ``flag`` is set exactly when ``state`` is FLAGGED."""

    rule: str
    title: str
    state: CheckState
    evidence: str = ""
    flag: Flag | None = None

    @classmethod
    def ok(cls, rule: str, title: str, evidence: str = "") -> "Verdict":
        return cls(rule, title, CheckState.OK, evidence)

    @classmethod
    def not_checked(cls, rule: str, title: str, evidence: str = "") -> "Verdict":
        return cls(rule, title, CheckState.NOT_CHECKED, evidence)

    @classmethod
    def flagged(cls, flag: Flag) -> "Verdict":
        return cls(flag.rule, flag.title, CheckState.FLAGGED, flag.evidence, flag)

    def to_event(self, iteration: int = 0) -> FlagRaised:
        """The event form (``status`` is the CheckState value)."""
        flag = self.flag
        return FlagRaised(
            rule=self.rule,
            title=self.title,
            status=self.state.value,
            severity=flag.severity if flag else Severity.INFO,
            evidence=self.evidence,
            likely_cause=flag.likely_cause if flag else "",
            fix=flag.fix if flag else "",
            iter=iteration,
            data=dict(flag.data) if flag else {},
        )
