"""The run directory's one file codec: names, writers, tolerant readers, value encoding, lock.

Torch-free and UI-free, so the engine (which writes a run), the report and ``cockpit ls``
(which read one) and the remote client and server (which stream its events) all go
through the same code:

- :mod:`~cockpit.runfiles.layout` -- every file's name; creating and finding run folders;
- :mod:`~cockpit.runfiles.codec` -- the JSON encoding (NaN/Inf as strings) and the
  depth-bounded parser;
- :mod:`~cockpit.runfiles.jsonl` -- appending lines, atomic whole-file writes, readers
  that skip and count bad lines;
- :mod:`~cockpit.runfiles.lock` and :mod:`~cockpit.runfiles.folder` -- one live owner per
  run folder, and validate-before-touch when resuming.
"""

from cockpit.runfiles.folder import RunFolder
from cockpit.runfiles.jsonl import (
    EVENT_SCHEMA,
    METRICS_SCHEMA,
    JsonlAppender,
    JsonlFile,
    iter_jsonl,
    read_json,
    read_jsonl,
    write_atomic,
    write_json,
)
from cockpit.runfiles.lock import RunBusyError, RunLock, owner_pid

__all__ = [
    "EVENT_SCHEMA",
    "METRICS_SCHEMA",
    "JsonlAppender",
    "JsonlFile",
    "RunBusyError",
    "RunFolder",
    "RunLock",
    "iter_jsonl",
    "owner_pid",
    "read_json",
    "read_jsonl",
    "write_atomic",
    "write_json",
]
