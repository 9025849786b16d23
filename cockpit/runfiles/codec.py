"""The one value encoding of run files and of the control socket: JSON with NaN/Inf as strings.

JSON has no NaN or Infinity, yet a NaN loss is exactly what a cockpit must record and
show. Writers turn non-finite floats into the strings ``"nan"``, ``"inf"`` and ``"-inf"``
(:func:`encode`, :func:`dumps`); readers turn them back (:func:`decode`, :func:`number`).

:func:`loads` is the one parser for a line someone else wrote: it refuses nesting deeper
than :data:`MAX_DEPTH` before ``json.loads`` sees it, because the C decoder recurses once
per bracket and a line of 50,000 ``[`` would otherwise raise ``RecursionError``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting accepted in one line; cockpit's own records nest at most 4 deep."""

NONFINITE: dict[str, float] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
"""The strings that stand for non-finite floats, and their values."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def encode(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string (containers copied)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`: ``"nan"``/``"inf"``/``"-inf"`` strings back to floats."""
    if isinstance(value, str):
        return NONFINITE.get(value, value)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def dumps(record: Any) -> str:
    """One compact JSON line (no newline); non-finite floats written as strings."""
    return json.dumps(encode(record), separators=(",", ":"), allow_nan=False)


def depth(text: str) -> int:
    """How deeply the JSON text nests (brackets inside strings do not count)."""
    deepest = level = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        level += 1 if bracket in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def loads(line: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON text; raises ``ValueError`` for bad JSON or nesting past ``max_depth``.

    Bytes that are not UTF-8 are read with replacement characters: a torn multi-byte
    character must not cost the whole record.
    """
    # Counting brackets is cheap; the exact depth is only worked out for lines that could
    # be too deep, so ordinary records cost two count() calls.
    if isinstance(line, (bytes, bytearray)):
        if line.count(b"[") + line.count(b"{") > max_depth:
            return loads(bytes(line).decode("utf-8", errors="replace"), max_depth)
        try:
            # Decoded here rather than by json.loads (which sniffs the encoding of every
            # line): a long run's report parses 100,000 lines. utf-8-sig drops a BOM as
            # json.loads would.
            line = bytes(line).decode("utf-8-sig")
        except UnicodeDecodeError:
            line = bytes(line).decode("utf-8", errors="replace")
    elif line.count("[") + line.count("{") > max_depth and depth(line) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    try:
        return _DECODE(line)
    except RecursionError:  # belt and braces: a smaller interpreter recursion limit
        raise ValueError("nested too deeply") from None


_DECODE = json.JSONDecoder().decode
"""``json.loads`` for a str without its per-call argument handling (the same decoder)."""


def number(value: Any) -> float | None:
    """A float for plotting, or None for anything that is not a number (NaN/Inf kept).

    Accepts the strings :func:`encode` writes and numeric strings other writers quote.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value in NONFINITE:
            return NONFINITE[value]
        try:
            return float(value)
        except ValueError:
            return None
    return None


def finite(value: Any) -> float | None:
    """The value as a finite float, else None."""
    if type(value) is float:  # the common case, 500,000 times in a long run's report
        return value if value - value == 0.0 else None
    result = number(value)
    return result if result is not None and math.isfinite(result) else None
