"""How checks word their evidence and which boxes they judge: shared by every check module."""

from __future__ import annotations

import numpy as np

from cockpit.diagnostics.preflight.arrays import LABEL_MISSING, TargetArrays


def examples(arrays: TargetArrays, rows: np.ndarray, limit: int = 3) -> str:
    """``a.png (#0), b.png (#4) and 12 more`` from image rows (repeats allowed, order kept)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return ""
    uniq, first = np.unique(rows, return_index=True)
    ordered = uniq[np.argsort(first)]
    text = ", ".join(arrays.name(int(r)) for r in ordered[:limit])
    if ordered.size > limit:
        text += f" and {ordered.size - limit} more"
    return text


def offender_rows(arrays: TargetArrays, rows: np.ndarray, limit: int = 20) -> list[int]:
    uniq = np.unique(np.asarray(rows, dtype=np.int64))
    return [int(arrays.indices[r]) for r in uniq[:limit]]


def box_text(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box.tolist()) + "]"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def finite_boxes(arrays: TargetArrays) -> np.ndarray:
    return np.all(np.isfinite(arrays.boxes), axis=1)


def valid_boxes(arrays: TargetArrays) -> np.ndarray:
    b = arrays.boxes
    return finite_boxes(arrays) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])


def labels_known(arrays: TargetArrays) -> np.ndarray:
    return arrays.labels != LABEL_MISSING
