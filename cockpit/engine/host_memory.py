"""glibc's malloc set for a training loop: memory freed in one iteration is reused by the next.

Every CPU iteration allocates and frees the same tensors (activations, gradients). With
glibc's defaults the freed memory often goes back to the kernel -- a block above the
dynamic mmap threshold is unmapped, the free top of a heap is trimmed, and a thread's
own arena drops whole 64 MB heaps -- and the next iteration takes it back one 4 KB page
fault at a time. Measured on the `tiny` sample (2 cores, bench/notes.md): in row 1's
process the trainer thread and its OpenMP worker took ~4,600 minor page faults an
iteration (~18 MB touched afresh) and the bare loop's thread, with a luckier arena,
~1,200: the two sides differed by 5% for that alone; with these settings both took
about 10 and trained 3-4% faster. A thread training the tiny model alone
(``tests/unit/test_host_memory.py``, one torch thread) takes ~7,000 with glibc's
defaults and ~160 with these.

What it costs: the process keeps up to 1 GiB of freed heap instead of returning it (a
block of 32 MB or more is still mapped and unmapped on its own), and so may each
DataLoader worker, which is forked with these settings. Every thread -- the trainer, its
OpenMP workers, the cockpit's own -- takes the one arena's lock; on 2 cores no
contention showed (measured there only). PyTorch's CPU performance guide makes the same
trade with jemalloc or tcmalloc.

Applied once per process when a trainer starts; left alone when the process runs another
allocator (``LD_PRELOAD``), when the user set glibc's own ``MALLOC_*`` variables or
``GLIBC_TUNABLES=glibc.malloc.*``, with ``COCKPIT_MALLOC=system``, and off glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

TRIM_THRESHOLD = 1 << 30
MMAP_THRESHOLD = 32 << 20
"""glibc's largest mmap threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``)."""

SETTINGS = {M_ARENA_MAX: 1, M_TRIM_THRESHOLD: TRIM_THRESHOLD, M_MMAP_THRESHOLD: MMAP_THRESHOLD}

_lock = threading.Lock()
_outcome: str | None = None


def why_not(environ: "os._Environ[str] | dict[str, str]" = os.environ, platform: str = sys.platform) -> str:
    """Why the allocator is left as it is ("" when it may be set)."""
    if platform != "linux":
        return f"not Linux ({platform})"
    if environ.get("COCKPIT_MALLOC", "").strip().lower() == "system":
        return "COCKPIT_MALLOC=system"
    if environ.get("LD_PRELOAD", "").strip():
        return "LD_PRELOAD names another allocator"
    chosen = sorted(name for name in environ if name.startswith("MALLOC_"))
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        chosen.append("GLIBC_TUNABLES")
    if chosen:
        return f"{', '.join(chosen)} set by the user"
    return ""


def keep_freed_memory() -> str:
    """Set glibc's malloc for training (once per process); returns what was done, in words."""
    global _outcome
    with _lock:
        if _outcome is None:
            _outcome = _apply()
        return _outcome


def _apply() -> str:
    reason = why_not()
    if reason:
        return f"system default ({reason})"
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "system default (no mallopt: not glibc)"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt answers 1 when it took a value; musl's stub answers 0 to everything.
    took = {param: mallopt(param, value) == 1 for param, value in SETTINGS.items()}
    described = {M_ARENA_MAX: "1 arena", M_TRIM_THRESHOLD: f"trim above {TRIM_THRESHOLD >> 20} MB",
                 M_MMAP_THRESHOLD: f"mmap from {MMAP_THRESHOLD >> 20} MB"}
    if all(took.values()):
        return f"glibc, freed memory kept ({', '.join(described.values())})"
    if not any(took.values()):
        return "system default (mallopt refused: not glibc)"
    kept = ", ".join(described[param] for param, ok in took.items() if ok)
    refused = ", ".join(described[param] for param, ok in took.items() if not ok)
    return f"glibc, freed memory kept in part ({kept}; refused: {refused})"
