"""``metrics.csv``'s training rows copied from ``metrics.jsonl``'s text, not formatted again.

A 100,000-iteration run has about two million numbers in its training records; the csv
module spent over a second turning them back into text (``str(float)``), the text that
is already in the JSON lines: cockpit's writer writes each number as ``repr`` does and
the csv module writes ``str``, the same string. When every training line is exactly as
the writer writes it -- the same keys in the same order, all values scalar, no spaces
-- the line becomes its CSV row by deleting the keys (a few passes over the
whole block with numpy masks). Anything else returns None and the caller takes the general path,
so the file is the same either way.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_right
from typing import Any, Sequence

_NONFINITE = ((b'"nan"', b"nan"), (b'"inf"', b"inf"), (b'"-inf"', b"-inf"))
"""The writer's strings for non-finite floats; csv writes the decoded floats as these words."""

_FORBIDDEN = (b" ", b"\t", b"\r", b"[", b"N", b"I")
"""Any of these left in a row means its line was not plain: whitespace between tokens, a
list, or JSON's ``NaN`` / ``Infinity`` literals (csv writes the floats as ``nan`` / ``inf``)."""


def uniform_keys(train: Sequence[dict[str, Any]], leading: Sequence[str]) -> tuple[str, ...] | None:
    """The key order every training record shares, when it starts with ``leading`` (else None)."""
    if not train:
        return None
    keys = tuple(train[0])
    if keys[: len(leading)] != tuple(leading) or keys[:2] != ("kind", "iter"):
        return None
    return keys if all(map(keys.__eq__, map(tuple, train))) else None


def train_block(lines: Sequence[bytes], keys: Sequence[str], pad: int) -> bytes | None:
    """The CSV rows (``\\r\\n``-ended, ``pad`` empty cells appended) of training lines whose
    records have exactly ``keys`` in order, or None when a line is not in the writer's plain form."""
    count = len(lines)
    block = b"".join(lines)
    if not block.endswith(b"\n"):
        block += b"\n"  # a complete last record whose newline was never written
    if block.count(b"\n") != count or block.count(b"{") != count or block.count(b'{"kind":"train",') != count:
        return None
    text = _without_keys(block, count, len(keys))
    nonfinite = False
    if text is None:
        # A NaN loss is written as the string "nan": unquote those and try once more.
        for quoted, word in _NONFINITE:
            if quoted in block:
                block, nonfinite = block.replace(quoted, word), True
        text = _without_keys(block, count, len(keys)) if nonfinite else None
        if text is None:
            return None
    if b"null" in text:
        text = text.replace(b"null", b"")
    if any(token in text for token in _FORBIDDEN) or text.count(b"t") != count:  # "t": only in "train"
        return None  # (a "true" would add one)
    if (nonfinite and b"false" in text) or (not nonfinite and b"f" in text):
        return None
    if text.count(b",") != count * (len(keys) - 1) or text.count(b"}") != count:
        return None
    rows = text.replace(b"}\n", b"," * pad + b"\r\n")
    return None if b"}" in rows else rows


def _without_keys(block: bytes, count: int, keys: int) -> bytes | None:
    """``block`` less its ``{``, its quotes and its ``"key":`` tokens, cut with numpy
    masks in a few passes (a ``bytes.replace`` per key took a second), or None when the
    quotes are not exactly those of the keys and the ``"train"`` value.

    Every line's record has all the keys, so each line has at least their quotes; the
    exact total then means each line has exactly those: no string value, no object
    value (its keys would add quotes), no escaped quote."""
    import numpy as np

    data = np.frombuffer(block, dtype=np.uint8)
    is_quote = data == ord('"')
    per_line = 2 * (keys + 1)
    if np.count_nonzero(is_quote) != count * per_line:
        return None
    quotes = np.flatnonzero(is_quote).reshape(count, per_line)
    # Quote pairs 0 and 2.. are the keys (pair 1 is the "train" value).
    opens = np.delete(quotes[:, 0::2], 1, axis=1)
    colons = np.delete(quotes[:, 1::2], 1, axis=1) + 1
    if not (data[colons] == ord(":")).all() or not (data[opens[:, 0] - 1] == ord("{")).all():
        return None
    # Mark each cut [opening quote (the brace, for the first key) .. colon] with +1 at its
    # start and -1 past its end; a running sum is then 1 inside a cut, 0 outside.
    edges = np.zeros(len(data) + 1, dtype=np.int8)
    opens[:, 0] -= 1
    edges[opens] = 1
    edges[colons + 1] = -1
    keep = (np.cumsum(edges[:-1], dtype=np.int8) == 0) & ~is_quote
    return data[keep].tobytes()


def merge_rows(block: bytes, train_iters: Sequence[Any], extra: list[tuple[float, list[Any]]]) -> list[bytes] | None:
    """``block`` split around ``extra`` rows (``(iteration, cells)``, sorted), each placed
    after the training rows of its iteration -- the general path's sort order. None when
    the training iterations are not plain increasing integers."""
    if set(map(type, train_iters)) != {int} or any(a >= b for a, b in zip(train_iters, train_iters[1:])):
        return None
    if any(it != it for it, _cells in extra):
        return None  # a NaN iteration has no place in a sorted order
    if not extra:
        return [block]
    import numpy as np

    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + 1
    pieces: list[bytes] = []
    start = 0
    for it, cells in extra:
        rows_before = bisect_right(train_iters, it)
        cut = int(ends[rows_before - 1]) if rows_before else 0
        pieces.append(block[start:cut])
        start = max(start, cut)
        pieces.append(csv_line(cells))
    pieces.append(block[start:])
    return pieces


def csv_line(cells: list[Any]) -> bytes:
    """One row as the csv module writes it (quoting included)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().encode("utf-8")
