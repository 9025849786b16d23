"""The verdict helpers every rule uses, pre-flight and live alike.

A rule names itself by its catalog id; these build its :class:`Verdict` with the
catalog's title, so a rule body only says what it found.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cockpit.diagnostics.catalog import RULES_BY_ID
from cockpit.diagnostics.flags import Flag, Verdict
from cockpit.engine.events import Severity


def title(rule: str) -> str:
    """The checklist title of ``rule`` (from the catalog)."""
    return RULES_BY_ID[rule].title


def flagged(rule: str, severity: Severity, evidence: str, cause: str, fix: str, **data: Any) -> Verdict:
    """FLAGGED, with the evidence, likely cause, fix and machine-readable ``data``
    (numpy values turned into plain Python so events and JSON can carry them)."""
    return Verdict.flagged(Flag(rule, title(rule), severity, evidence, cause, fix, plain(data)))


def ok(rule: str, evidence: str = "") -> Verdict:
    """OK, with the evidence that was looked at."""
    return Verdict.ok(rule, title(rule), evidence)


def not_checked(rule: str, evidence: str = "") -> Verdict:
    """NOT_CHECKED: not enough seen yet, or nothing to judge (the evidence says which)."""
    return Verdict.not_checked(rule, title(rule), evidence)


def plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists, ints and floats."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def jsonable(value: Any) -> Any:
    """:func:`plain`, and non-finite floats as None (strict JSON, as ``preflight.json``)."""
    value = plain(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
