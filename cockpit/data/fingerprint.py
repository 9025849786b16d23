"""A dataset fingerprint recorded at run start, so runs can be checked for "same data".

``cockpit compare`` warns when two runs' fingerprints differ: a better AP on other data
says nothing about the change being compared. Per split it records the source as the
config names it, the number of images the dataset holds, and a SHA-256 of what defines
the split:

- ``coco``: the annotation JSON's bytes;
- ``masks``: the sorted list of files under the dataset root with their sizes (hashing
  every mask's pixels would cost seconds on a large set; a changed, added or removed
  file still changes the fingerprint unless its size stays the same);
- ``module``: the ``module:Class`` spec and its keyword arguments.

No torch here; it runs once, in the engine's setup.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _listing_digest(root: Path) -> str:
    digest = hashlib.sha256()
    entries = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            try:
                entries.append((path.relative_to(root).as_posix(), path.stat().st_size))
            except OSError:
                continue
    for relative, size in sorted(entries):
        digest.update(f"{relative}\t{size}\n".encode("utf-8", errors="replace"))
    return digest.hexdigest()


def _split_digest(config: Any, split: str) -> str:
    fmt = config.data.format
    source = getattr(config.data, split)
    if fmt == "module":
        spec = {"class": source, "args": getattr(config.data, f"{split}_args")}
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    path = config.resolve_path(source)
    return _listing_digest(path) if fmt == "masks" else _file_digest(path)


def dataset_fingerprint(config: Any, train_images: int | None, val_images: int | None) -> dict[str, Any]:
    """``{"classes": [...], "train": {...}, "val": {...}}`` for ``config`` (a split without a
    source is left out; an unreadable one has ``sha256: None`` and an ``error``)."""
    out: dict[str, Any] = {"format": config.data.format, "classes": list(config.data.classes)}
    for split, images in (("train", train_images), ("val", val_images)):
        source = getattr(config.data, split)
        if not source:
            continue
        entry: dict[str, Any] = {"source": source, "images": images}
        try:
            entry["sha256"] = _split_digest(config, split)
        except OSError as error:
            entry["sha256"] = None
            entry["error"] = f"{type(error).__name__}: {error}"
        out[split] = entry
    return out
