"""Writing and tolerantly reading run files: JSON lines appended one at a time, whole files atomically.

A report or ``cockpit ls`` is most wanted when something went wrong, so readers never
raise on a damaged file: a torn last line (the writer was killed mid-write), a line that
is not JSON, a line nested too deep, a record whose known fields have the wrong type
(``{"kind": "eval", "metrics": [1, 2]}``) are skipped and counted, and
:meth:`JsonlFile.describe` says so in one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Collection, Iterable, Iterator, Mapping, TextIO

from cockpit.runfiles import codec
from cockpit.runfiles.layout import TEMP_SUFFIX

_NUMBER = (int, float, str)
"""A float field: a number, or one of the NaN/Inf strings (checked in :func:`_type_ok`)."""

Schema = Mapping[str | None, Mapping[str, tuple[type, ...] | type]]
"""Expected types of the fields readers use: per ``kind`` (``None``: every kind)."""

EVENT_SCHEMA: Schema = {
    None: {"kind": str, "iter": int, "epoch": int, "time": _NUMBER},
    "run_started": {"config": dict, "environment": dict, "total_iters": int, "start_iter": int},
    "step": {"losses": dict, "memory": dict, "loss": _NUMBER, "lr": _NUMBER},
    "eval": {"metrics": dict, "per_class": dict},
    "lr": {"lr": _NUMBER, "previous": _NUMBER},
    "finished": {"outcome": str, "state": str, "reason": str},
    "state": {"state": str, "previous": str},
}
"""``events.jsonl``: the fields that ``ls``, ``report`` and ``attach`` read."""

METRICS_SCHEMA: Schema = {
    None: {"kind": str, "iter": int, "epoch": int, "timestamp": _NUMBER},
    "train": {"loss": _NUMBER, "lr": _NUMBER},
    "eval": {"eval": dict},
}
"""``metrics.jsonl``."""


def _type_ok(value: Any, expected: tuple[type, ...] | type) -> bool:
    if value is None:
        return True  # absent-but-named: readers already treat None as "not recorded"
    if isinstance(value, bool):
        return expected is bool or (isinstance(expected, tuple) and bool in expected)
    if expected is _NUMBER:
        return isinstance(value, (int, float)) or codec.number(value) is not None
    return isinstance(value, expected)


def _plain_types(expected: tuple[type, ...] | type) -> frozenset[type]:
    """Types accepted for ``expected`` at a glance (bool never: it is an int subclass)."""
    if expected is _NUMBER:
        return frozenset({int, float, type(None)})
    return frozenset((expected if isinstance(expected, tuple) else (expected,)) + (type(None),)) - {bool}


_COMPILED: dict[int, tuple[Schema, dict]] = {}


def _compiled(schema: Schema) -> dict:
    """Per kind: ``(key, types accepted at a glance, expected)`` rows, built once per schema."""
    entry = _COMPILED.get(id(schema))
    if entry is None or entry[0] is not schema:
        rows = {kind: tuple((key, _plain_types(exp), exp) for key, exp in table.items()) for kind, table in schema.items()}
        entry = _COMPILED[id(schema)] = (schema, rows)
    return entry[1]


def check(record: Any, schema: Schema | None) -> str | None:
    """Why ``record`` does not fit ``schema`` (None when it does)."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if schema is None:
        return None
    tables = _compiled(schema)
    for table in (tables.get(None, ()), tables.get(record.get("kind"), ())):
        for key, plain, expected in table:
            value = record.get(key)
            # Exact-type lookup first: 100,000 records of a long run pass here.
            if type(value) in plain:
                continue
            if key in record and not _type_ok(value, expected):
                return f"{key!r} is a {type(value).__name__}"
    return None


@dataclass
class JsonlFile:
    """The records of a JSON-lines file and what could not be read from it."""

    records: list[dict[str, Any]] = field(default_factory=list)
    exists: bool = False
    bad_lines: list[int] = field(default_factory=list)
    """1-based numbers of lines skipped: not JSON, nested too deep, or wrong field types."""
    truncated_tail: bool = False
    """The last line is cut off -- normal for a run killed mid-write, or still being written."""
    error: str | None = None

    def describe(self, name: str) -> list[str]:
        """One line per problem (empty when the file read cleanly)."""
        lines = []
        if self.error:
            lines.append(f"{name}: {self.error}")
        if self.truncated_tail:
            lines.append(f"{name}: the last line is truncated (run killed mid-write or still writing); skipped")
        if self.bad_lines:
            shown = ", ".join(str(n) for n in self.bad_lines[:10])
            more = f" and {len(self.bad_lines) - 10} more" if len(self.bad_lines) > 10 else ""
            lines.append(f"{name}: {len(self.bad_lines)} unreadable line(s) skipped (line {shown}{more})")
        return lines


def _skimmed(raw: bytes, prefixes: dict[bytes, str]) -> dict[str, Any] | None:
    """``{"kind", "time", "iter"}`` of a line cockpit's writer wrote for a skimmed kind,
    read without parsing the rest (None: not such a line, or not plainly readable).

    The writer puts an event's fields in order -- ``kind``, ``time`` (the base class's),
    then the kind's own, ``iter`` first -- so the line starts
    ``{"kind":"step","time":T,"iter":I,``; any other shape takes the full path.
    """
    for prefix, kind in prefixes.items():
        if raw.startswith(prefix):
            break
    else:
        return None
    if not raw.endswith(b"}\n"):  # torn or odd: parsed (and counted) in full
        return None
    start = len(prefix)
    middle = raw.find(b',"iter":', start)
    end = raw.find(b",", middle + 8) if middle > 0 else -1
    if end < 0:
        return None
    try:
        stamp, it = float(raw[start:middle]), int(raw[middle + 8 : end])
    except ValueError:
        return None
    return {"kind": kind, "time": stamp, "iter": it} if stamp == stamp else None


def iter_jsonl(
    path: Path, schema: Schema | None = None, into: JsonlFile | None = None, skim: Collection[str] = ()
) -> Iterator[dict[str, Any]]:
    """Yield the good records of ``path`` one by one (constant memory); bad lines are
    counted in ``into`` (give one to learn what was skipped).

    ``skim``: kinds whose records are yielded as ``{"kind", "time", "iter"}`` only, read
    straight from the line's bytes -- a report of a long run needs the 100,000 ``step``
    events of ``events.jsonl`` only for their times (``metrics.jsonl`` has their values),
    and parsing them whole was most of its run time. Lines not exactly as cockpit's writer
    writes them are parsed and checked in full as usual.
    """
    stats = into if into is not None else JsonlFile()
    prefixes = {b'{"kind":' + json.dumps(kind).encode() + b',"time":': kind for kind in skim}
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    except OSError as error:
        stats.exists = True
        stats.error = f"cannot read: {error.strerror or error}"
        return
    stats.exists = True
    with handle:
        yield from parse_lines(enumerate(handle, start=1), schema, stats, prefixes)


def parse_lines(
    numbered: Iterable[tuple[int, bytes]], schema: Schema | None, stats: JsonlFile, prefixes: dict[bytes, str] | None = None
) -> Iterator[dict[str, Any]]:
    """The good records of ``(line number, raw line)`` pairs; what is skipped goes to
    ``stats`` (see :func:`iter_jsonl`, whose loop this is; ``prefixes``: its skimmed kinds)."""
    for number, raw in numbered:
        if not raw.strip():
            continue
        if prefixes:
            lite = _skimmed(raw, prefixes)
            if lite is not None:
                yield lite
                continue
        try:
            record = codec.loads(raw)
        except ValueError:
            if not raw.endswith(b"\n"):
                stats.truncated_tail = True
            else:
                stats.bad_lines.append(number)
            continue
        if check(record, schema) is not None:
            stats.bad_lines.append(number)
            continue
        yield record


def read_jsonl(path: Path, schema: Schema | None = None, skim: Collection[str] = ()) -> JsonlFile:
    """Every good record of ``path`` with what was skipped (see :func:`iter_jsonl`)."""
    result = JsonlFile()
    result.records = list(iter_jsonl(Path(path), schema, result, skim))
    return result


def read_json(path: Path) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, "missing")``, or ``(None, reason)`` for an unreadable file."""
    path = Path(path)
    if not path.is_file():
        return None, "missing"
    try:
        return codec.loads(path.read_text(encoding="utf-8", errors="replace")), None
    except (OSError, ValueError) as error:
        return None, f"unreadable ({error.__class__.__name__}: {error})"


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` in one step when the block ends.

    The data goes to ``.<name>.*.tmp`` beside the target, is synced, and replaces it with
    ``os.replace``, so a reader (or a crash) sees the old file or the new one, never half;
    on an error the temp file is removed and the target is untouched. A temp file a
    killed writer leaves is removed on the run's next start (:mod:`.folder`).
    """
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp makes the file 0600; run files are as readable as any file the user writes.
        os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write a whole file atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777  # keep the mode of the file being replaced
    except OSError:
        return 0o644


def write_json(path: Path, value: Any, indent: int | None = 1) -> Path:
    """A JSON document written atomically (non-finite floats as strings)."""
    return write_atomic(path, json.dumps(codec.encode(value), indent=indent, allow_nan=False))


class JsonlAppender:
    """Appends records to a JSON-lines file, one flushed line each: a killed process
    loses at most the line being written."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._handle: TextIO = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(codec.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def drop_torn_tail(path: Path) -> bool:
    """Cut a last line that has no newline (a writer killed mid-line), so the next append
    starts on a line of its own; True when something was cut."""
    try:
        with open(path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return False
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return False
            # Walk back to the last newline; a torn line is short, so read backwards in blocks.
            end = size
            while end > 0:
                start = max(0, end - 65536)
                handle.seek(start)
                cut = handle.read(end - start).rfind(b"\n")
                if cut >= 0:
                    handle.truncate(start + cut + 1)
                    return True
                end = start
            handle.truncate(0)
            return True
    except FileNotFoundError:
        return False


def split_after(path: Path, iteration: int, abandoned: Path) -> int:
    """Move the records of ``path`` whose ``iter`` is past ``iteration`` to the end of
    ``abandoned``; ``path`` is rewritten atomically. Returns how many lines moved.

    A resumed run continues from its checkpoint's iteration: what the killed process
    logged after that checkpoint is history nobody will see again in the weights, and
    kept in ``metrics.jsonl`` it would repeat iterations out of order.
    """
    path = Path(path)
    try:
        raw_lines = path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    keep: list[bytes] = []
    moved: list[bytes] = []
    for raw in raw_lines:
        if not raw.endswith(b"\n"):
            continue  # a torn tail: unreadable, so not worth keeping anywhere
        try:
            record = codec.loads(raw)
        except ValueError:
            keep.append(raw)  # readers skip and count it; rewriting history is not our job
            continue
        it = record.get("iter") if isinstance(record, dict) else None
        (moved if isinstance(it, int) and not isinstance(it, bool) and it > iteration else keep).append(raw)
    if not moved and len(keep) == len(raw_lines):
        return 0
    if moved:
        with open(abandoned, "ab") as handle:
            handle.writelines(moved)
    write_atomic(path, b"".join(keep))
    return len(moved)
