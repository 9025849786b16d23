"""A large JSON object parsed in small steps, so other threads keep running meanwhile.

``json.loads`` is one C call: it holds the GIL until the whole document is parsed, about
a second per 50 MB here. A COCO annotation file is read behind the cockpit's first
frame, and for that second the cockpit could neither draw nor take a key. A COCO file is
an object of a few keys whose values are long arrays ("images", "annotations"), so
:func:`loads` walks the top-level object itself and hands each array element to the
standard decoder's scanner (the same C scanner ``json.loads`` uses):
the interpreter can switch threads between elements, and the parse can say how far it
has come. The result is what ``json.loads`` returns; any document it does not take this
way (not an object, malformed) goes to ``json.loads`` whole, so errors read the same.
Only a process that turns it on (:func:`parse_in_steps`: the cockpit) pays its cost.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

STEPWISE_FROM = 1 << 20
"""Documents shorter than this (characters) are parsed by ``json.loads`` in one call:
it takes a few milliseconds, less than a frame."""

_in_steps = False


def parse_in_steps(enabled: bool = True) -> None:
    """Whether this process parses large documents in steps. The walk takes about 1.5x
    ``json.loads``'s time (a 51 MB COCO file: 1.5 s against 1.0 s here), worth it only
    where another thread must keep running meanwhile: the cockpit turns it on; ``check``,
    ``--headless`` and detached runs, with nothing to keep live, parse in one call."""
    global _in_steps
    _in_steps = enabled

_REPORT_EVERY = 512
"""Array elements between two progress reports."""

_SPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE = " \t\n\r"
# The C scanner json.loads runs, called without raw_decode's Python wrapper: one call per
# array element makes the wrapper's cost show.
_SCAN = json.JSONDecoder().scan_once


class _NotStepwise(Exception):
    """The document is not one this walk takes; ``json.loads`` parses it instead."""


def decode(raw: bytes) -> str:
    """``raw`` as text, in the encoding ``json.loads`` would detect (UTF-8, -16 or -32)."""
    encoding = json.detect_encoding(raw)
    return raw.decode(encoding, "surrogatepass")


def stepwise(text: str) -> bool:
    """Whether :func:`loads` walks ``text`` in steps (rather than one ``json.loads`` call)."""
    return _in_steps and len(text) >= STEPWISE_FROM


def loads(text: str, progress: Callable[[int, int], None] | None = None) -> Any:
    """``json.loads(text)``, yielding the GIL between array elements of the top-level
    object (when :func:`parse_in_steps` is on). ``progress(done, total)`` hears the
    characters parsed so far."""
    if not stepwise(text):
        return json.loads(text)
    try:
        return _walk_object(text, progress)
    except (_NotStepwise, json.JSONDecodeError, IndexError):
        # json.loads gives the error its usual message (line and column), or parses what
        # the walk does not take. (An error raised by ``progress`` is not caught here.)
        return json.loads(text)


def _value(text: str, index: int) -> tuple[Any, int]:
    """The JSON value starting at ``index`` and the index after it."""
    try:
        return _SCAN(text, index)
    except StopIteration as error:
        raise json.JSONDecodeError("Expecting value", text, error.value) from None


def _skip(text: str, index: int) -> int:
    return _SPACE.match(text, index).end()


def _expect(text: str, index: int, char: str) -> int:
    if text[index] != char:
        raise _NotStepwise
    return _skip(text, index + 1)


def _walk_object(text: str, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    total = len(text)
    index = _expect(text, _skip(text, 0), "{")
    result: dict[str, Any] = {}
    # One scan of json.loads shares each key string among all the objects it makes; the
    # scanner forgets its keys after every call, so the walk keeps them itself.
    # Without this a COCO file's 7 keys per annotation were 7 new strings per annotation
    # (about 400 MB more for COCO train2017, for as long as the run).
    keys: dict[str, str] = {}
    if text[index] == "}":
        index = _skip(text, index + 1)
    else:
        while True:
            key, index = _value(text, index)
            if not isinstance(key, str):
                raise _NotStepwise
            index = _expect(text, _skip(text, index), ":")
            if text[index] == "[":
                value, index = _walk_array(text, index, progress, total, keys)
            else:
                value, index = _value(text, index)
            result[key] = value
            index = _skip(text, index)
            if text[index] == "}":
                index = _skip(text, index + 1)
                break
            index = _expect(text, index, ",")
    if index != total:
        raise _NotStepwise  # trailing data: json.loads reports "Extra data"
    if progress is not None:
        progress(total, total)
    return result


def _walk_array(
    text: str, index: int, progress: Callable[[int, int], None] | None, total: int, keys: dict[str, str]
) -> tuple[list, int]:
    index = _skip(text, index + 1)
    items: list[Any] = []
    if text[index] == "]":
        return items, index + 1
    shared = keys.setdefault
    while True:
        item, index = _value(text, index)
        if type(item) is dict:
            item = {shared(key, key): value for key, value in item.items()}
        items.append(item)
        if progress is not None and len(items) % _REPORT_EVERY == 0:
            progress(index, total)
        # The separators by hand, the regex only where there is whitespace: this loop runs
        # once per annotation.
        char = text[index]
        if char in _WHITESPACE:
            index = _skip(text, index)
            char = text[index]
        if char == "]":
            return items, index + 1
        if char != ",":
            raise _NotStepwise
        index += 1
        if text[index] in _WHITESPACE:
            index = _skip(text, index)
