"""``metrics.csv``: the training records of ``metrics.jsonl`` as one spreadsheet table.

Columns: ``iter``, ``epoch``, ``lr``, the total and the four loss terms always (empty
where a record lacks them, so a spreadsheet formula can rely on them), then every other
scalar key in the order first seen. Evaluation records are flattened into ``eval_<name>``
columns on their own rows (``kind = eval``), so AP lines up with the iteration.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Collection

from cockpit.report.columnar import TrainTable
from cockpit.report.rundir import COCO_KEYS, LOSS_KEYS, RunDir

LEADING_COLUMNS = ("kind", "iter", "epoch", "lr", *LOSS_KEYS)


def metrics_rows(run: RunDir) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) for metrics.csv, train and eval records merged in iteration order."""
    columns = list(LEADING_COLUMNS)
    seen = set(columns)
    rows: list[dict[str, Any]] = []
    for record in run.train:
        new_keys = record.keys() - seen
        if new_keys:
            # Keep first-seen order; nested values (dicts, lists) are not spreadsheet cells.
            for key in record:
                if key in new_keys:
                    seen.add(key)
                    if not isinstance(record[key], (dict, list)):
                        columns.append(key)
        if "kind" not in record:
            record = {"kind": "train", **record}
        rows.append(record)
    rows += _eval_rows(run)
    columns += _eval_columns(run, seen)
    rows.sort(key=_order)  # stable: train records keep file order within an iteration
    return columns, rows


def _eval_rows(run: RunDir) -> list[dict[str, Any]]:
    rows = []
    for record in run.evals:
        row = {"kind": "eval", "iter": record.get("iter"), "epoch": record.get("epoch"), "timestamp": record.get("timestamp")}
        for key in COCO_KEYS:
            row[f"eval_{key}"] = record["eval"].get(key)
        rows.append(row)
    return rows


def _eval_columns(run: RunDir, seen: Collection[str]) -> list[str]:
    if not run.evals:
        return []
    columns = [c for c in (f"eval_{k}" for k in COCO_KEYS) if c not in seen]
    return columns + ([] if "timestamp" in seen else ["timestamp"])


def _order(row: dict[str, Any]) -> tuple[float, int]:
    it = row.get("iter")
    number = float(it) if isinstance(it, (int, float)) else math.inf
    return (number, 1 if row["kind"] == "eval" else 0)


def _as_text(run: RunDir) -> bytes | None:
    """The whole file with the training rows taken from the text that
    :class:`~cockpit.report.columnar.TrainTable` kept (over a second of ``str(float)``
    saved on a long run); None when the records were not read as a table."""
    table = run.train
    if not isinstance(table, TrainTable) or table.keys[: len(LEADING_COLUMNS)] != LEADING_COLUMNS:
        return None
    iters = table.column("iter")
    columns = list(table.keys) + _eval_columns(run, table.keys)
    evals = sorted(_eval_rows(run), key=_order)
    if iters is None or any(_order(row)[0] != _order(row)[0] for row in evals):
        return None  # a NaN iteration has no place in a sorted order
    pad = b"," * (len(columns) - len(table.keys))
    block = b"train," + table.text.replace(b"}\n", pad + b"\r\ntrain,")[: -len(b"train,")]
    # Each evaluation goes after the training rows of its iteration, as the general path sorts.
    import numpy as np

    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")) + 1
    pieces = [_csv_line(columns)]
    start = 0
    for row in evals:
        rows_before = int(np.searchsorted(iters, _order(row)[0], side="right"))
        cut = int(ends[rows_before - 1]) if rows_before else 0
        pieces += [block[start:cut], _csv_line([row.get(c) for c in columns])]
        start = cut
    pieces.append(block[start:])
    return b"".join(pieces)


def _csv_line(cells: list[Any]) -> bytes:
    """One row as the csv module writes it (quoting included)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().encode("utf-8")


def write_metrics_csv(run: RunDir, path: Path) -> Path:
    """Write metrics.csv (header only when there are no records)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _as_text(run)
    if text is not None:
        path.write_bytes(text)
        return path
    columns, rows = metrics_rows(run)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        # csv writes None as an empty cell and NaN as "nan" (kept visible on purpose).
        writer.writerows([row.get(c) for c in columns] for row in rows)
    return path
