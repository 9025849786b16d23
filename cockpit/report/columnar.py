"""``metrics.jsonl``'s training lines read as columns with numpy, not line by line as JSON.

A 100,000-iteration run logged at every step has 100,000 training lines (43 MB, two
million numbers). Parsed one by one they cost a second of ``json`` -- most of it
making Python floats and dicts nobody looks at: the report plots a few columns, shows
the first and last record, and copies the numbers to ``metrics.csv``.

When every training line is in the plain form cockpit's writer gives it -- the keys of
the first line, in its order, each value a number (or the writer's ``"nan"``/``"inf"``
strings), no spaces -- the keys are cut out of the whole block at once with numpy masks
and the numbers parsed in bulk by ``np.fromstring``. The text left (``train,1,0,...}``
per line) is also ``metrics.csv``'s rows: cockpit writes each number as ``repr`` does
and the csv module as ``str``, the same text. Anything else (a line with a string or
``null`` value, a missing key, a stray byte) makes :func:`read_metrics` fall back to the
line-by-line reader for the whole file, so damaged lines are skipped and counted exactly
as before. One difference is accepted: number tokens are read by ``strtod``, which also
takes a few forms JSON does not (``+1``, ``.5``) -- a digit-level oddity stays a number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence, overload

from cockpit.runfiles import codec
from cockpit.runfiles.jsonl import JsonlFile, Schema, parse_lines, read_jsonl

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

TRAIN_PREFIX = b'{"kind":"train",'
"""How the writer starts every training line; only such lines are read as columns."""

_NONFINITE = ((b'"nan"', b"nan"), (b'"inf"', b"inf"), (b'"-inf"', b"-inf"))
"""The writer's strings for non-finite floats, unquoted for ``strtod`` (and for csv,
which writes the decoded floats as these same words)."""

_NUMBER_BYTES = b"0123456789.-+eE,}\n"
_TO_SEPARATORS = bytes.maketrans(b"}\n", b", ")


class TrainTable(Sequence[dict[str, Any]]):
    """Training records held as float columns; a record (a dict) is parsed from its line,
    by the same JSON reader as any line, only when one is asked for. Once all were asked
    for (a loop over the table: ``cockpit compare``, the TensorBoard export) they are kept,
    so a second loop costs nothing and the records are the same objects each time."""

    def __init__(self, keys: tuple[str, ...], lines: list[bytes], values: "np.ndarray", text: bytes):
        self.keys = keys
        """The keys of every record, in the lines' order (``kind`` first)."""
        self._lines = lines
        self._values = values  # one column per key after "kind"
        self._records: list[dict[str, Any]] | None = None
        self.text = text
        """``<value>,...}\\n`` per record (every key but ``kind``): metrics.csv's rows, less
        their ``train,`` and their padding."""

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if self._records is not None:
            return self._records[index]
        if isinstance(index, slice):
            return [codec.loads(line) for line in self._lines[index]]
        return codec.loads(self._lines[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._records is None:
            self._records = list(map(codec.loads, self._lines))
        return iter(self._records)

    def column(self, key: str) -> "np.ndarray | None":
        """Every record's ``key`` as floats (NaN/Inf kept), or None for a key not recorded."""
        if key == "kind" or key not in self.keys:
            return None
        return self._values[:, self.keys.index(key) - 1]


def read_metrics(path: Path, schema: Schema) -> tuple[TrainTable | None, JsonlFile]:
    """``metrics.jsonl``: its training lines as a :class:`TrainTable` and the rest
    (evaluations) read line by line; or ``(None, read_jsonl(path, schema))`` when the
    training lines are not all plain (see the module doc)."""
    try:
        parts = Path(path).read_bytes().split(b"\n")
    except OSError:
        return None, read_jsonl(path, schema)  # missing or unreadable: said there
    tail = parts.pop()  # after the last newline: empty, or a line never finished
    train = [raw for raw in parts if raw.startswith(TRAIN_PREFIX)]
    table = train_table(train, schema) if train else None
    if table is None:
        return None, read_jsonl(path, schema)
    others = [(number, raw + b"\n") for number, raw in enumerate(parts, 1) if not raw.startswith(TRAIN_PREFIX)]
    if tail.strip():
        others.append((len(parts) + 1, tail))
    stats = JsonlFile(exists=True)
    stats.records = list(parse_lines(others, schema, stats))
    if any(record.get("kind", "train") == "train" for record in stats.records):
        return None, read_jsonl(path, schema)  # training records in two forms: one history, in file order
    return table, stats


def train_table(lines: list[bytes], schema: Schema) -> TrainTable | None:
    """The lines (each starting with :data:`TRAIN_PREFIX`, no newline) as a table, or None."""
    import numpy as np

    try:
        keys = tuple(codec.loads(lines[0]))
    except (ValueError, TypeError):
        return None
    ints = _int_keys(schema, keys)
    if ints is None:
        return None
    count = len(lines)
    block = b"\n".join(lines) + b"\n"
    cuts = _key_cuts(np.frombuffer(block, dtype=np.uint8), count, keys)
    nonfinite = cuts is None and any(quoted in block for quoted, _word in _NONFINITE)
    if nonfinite:
        # A NaN loss is written as the string "nan" (two quotes more): unquote, look again.
        for quoted, word in _NONFINITE:
            block = block.replace(quoted, word)
        cuts = _key_cuts(np.frombuffer(block, dtype=np.uint8), count, keys)
    if cuts is None:
        return None
    data = np.frombuffer(block, dtype=np.uint8)
    keep, opens, colons = cuts
    if not all(_int_tokens(data, colons[:, i] + 1, opens[:, i + 1] - 1) for i in ints):
        return None  # the line reader would call such a line bad (iter must be an integer)
    text = data[keep].tobytes()
    # Only the values are left: number bytes (and nan/inf letters) and nothing else -- no
    # brace of an object value, no letter of a true/false/null.
    if text.translate(None, _NUMBER_BYTES + (b"naif" if nonfinite else b"")):
        return None
    # "}\n" ends a line: a comma before the next line's first number (and none after the last).
    values = _parse_numbers(text.translate(_TO_SEPARATORS)[:-2], count * (len(keys) - 1))
    if values is None:
        return None
    return TrainTable(keys, lines, values.reshape(count, len(keys) - 1), text)


def _int_keys(schema: Schema, keys: tuple[str, ...]) -> list[int] | None:
    """Positions in ``keys`` of the integer fields the schema asks for (None: a field this
    reader cannot check, or an integer last, where its token has no comma to end it)."""
    positions = []
    for table in (schema.get(None, {}), schema.get("train", {})):
        for key, expected in table.items():
            if key not in keys or key == "kind":
                continue
            if expected is int:
                if keys.index(key) == len(keys) - 1:
                    return None
                positions.append(keys.index(key))
            elif not (isinstance(expected, tuple) and float in expected):
                return None
    return positions


def _key_cuts(data: "np.ndarray", count: int, keys: tuple[str, ...]) -> tuple[Any, Any, Any] | None:
    """(mask of the bytes to keep, opening quote of each key, its colon), or None unless
    every line has exactly the keys of ``keys`` in order and no string but ``"train"``.

    Cut from each line: ``{"kind":"train","<second key>":`` and every later ``,"key":``
    but its comma, leaving ``<value>,<value>,...}``. Each line holds at least the quotes
    of its keys, so an exact total means no other quote anywhere; the bytes cut are then
    compared with what the keys must give."""
    import numpy as np

    per_line = 2 * (len(keys) + 1)
    is_quote = data == ord('"')
    if np.count_nonzero(is_quote) != count * per_line:
        return None
    quotes = np.flatnonzero(is_quote).reshape(count, per_line)
    # Quote pairs 0 and 2.. are the keys (pair 1 is the "train" value).
    opens = np.delete(quotes[:, 0::2], 1, axis=1)
    colons = np.delete(quotes[:, 1::2], 1, axis=1) + 1
    if not (data[colons] == ord(":")).all():
        return None
    starts = opens[:, 1:].copy()
    starts[:, 0] = opens[:, 0] - 1  # the brace
    bounds = np.stack([starts, colons[:, 1:] + 1], axis=2).ravel()
    if bounds[0] != 0 or not (np.diff(bounds) > 0).all():
        return None
    # Segments alternate cut, kept, cut, ...: np.repeat lays the mask out in one pass.
    flags = np.zeros(len(bounds), dtype=bool)
    flags[1::2] = True
    keep = np.repeat(flags, np.diff(bounds, append=len(data)))
    expected = TRAIN_PREFIX + b"".join(json.dumps(key).encode("ascii") + b":" for key in keys[1:])
    if data[~keep].tobytes() != expected * count:
        return None
    return keep, opens, colons


def _int_tokens(data: "np.ndarray", starts: "np.ndarray", ends: "np.ndarray") -> bool:
    """Whether every token ``data[start:end]`` is a JSON integer (digits, maybe a minus)."""
    import numpy as np

    lengths = ends - starts
    if len(lengths) == 0 or lengths.min() < 1:
        return False
    digits = np.zeros(256, dtype=bool)
    digits[list(b"0123456789")] = True
    for offset in range(int(lengths.max())):
        present = lengths > offset
        chars = data[starts[present] + offset]
        ok = digits[chars] | ((chars == ord("-")) if offset == 0 else False)
        if not ok.all():
            return False
    return True


def _parse_numbers(text: bytes, expected: int) -> "np.ndarray | None":
    import numpy as np

    # numpy raises at the first token that is not a number (older versions warned and
    # stopped early: the size check catches that). No warnings filter is set here: it is
    # process-wide, and the cockpit builds reports in a worker thread next to training.
    try:
        values = np.fromstring(text, dtype=float, sep=",")
    except ValueError:
        return None
    return values if values.size == expected else None
