"""Fault injection for testing recovery paths on machines without a GPU.

``cockpit run ... --inject oom@12 --inject nan@30`` raises a real
``torch.cuda.OutOfMemoryError`` in the step of iteration 12 and poisons the loss of
iteration 30 with NaN. A testing aid, documented as such; each fires once.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("oom", "nan")


@dataclass
class Injection:
    """One fault to inject at a 1-based iteration."""

    kind: str
    iteration: int
    fired: bool = False


def parse_injection(text: str) -> Injection:
    """``"oom@12"`` -> Injection("oom", 12); ValueError with a readable message otherwise."""
    kind, sep, where = text.partition("@")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise ValueError(f"--inject {text!r}: expected KIND@ITER with KIND one of {', '.join(KINDS)}")
    try:
        iteration = int(where)
    except ValueError:
        raise ValueError(f"--inject {text!r}: ITER must be an integer") from None
    if iteration < 1:
        raise ValueError(f"--inject {text!r}: ITER counts from 1")
    return Injection(kind, iteration)
