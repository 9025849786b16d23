"""Ordinary permissions for files written through a temporary file.

``tempfile.mkstemp`` creates files ``0600`` whatever the umask, so an atomic write
(temp file + ``os.replace``) would leave a report or a checkpoint private while its
neighbours, written with ``open()``, follow the umask. Everything in a run directory
gets the same ordinary mode (``0666 & ~umask``, e.g. 0644); only the control socket is
private, and it is made so on purpose (``remote/server.py``).
"""

from __future__ import annotations

import os
import threading

_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _LOCK:  # elsewhere the only way to read it is to set it (and put it back)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def ordinary_mode() -> int:
    """The mode ``open()`` would give a new file: ``0666`` less the umask."""
    return 0o666 & ~current_umask()


def make_ordinary(fd: int) -> None:
    """Give the open temporary file ``fd`` the ordinary mode before it is moved into place."""
    os.fchmod(fd, ordinary_mode())
