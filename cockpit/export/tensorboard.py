"""TensorBoard event files from a run directory (``cockpit export RUN_DIR --tensorboard OUT``).

Written with TensorBoard's own event-file writer and summary protos (``tensorboard``
package, no TensorFlow and no torch), so the files are exactly what ``tensorboard
--logdir`` and its ``EventAccumulator`` read. The tags are :mod:`cockpit.export.tags`;
each point's wall time is the record's own timestamp, so TensorBoard's "relative" and
"wall" axes show the run as it happened. The config goes in as a text summary (``config``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.export.tags import eval_scalars, number, train_scalars

EXTRA = "install the tensorboard extra: pip install '.[tensorboard]' in cockpit's checkout (or pip install tensorboard)"


class TensorBoardMissing(Exception):
    """The ``tensorboard`` package is not installed; ``str()`` names the extra to install."""

    def __init__(self, what: str = "TensorBoard export") -> None:
        super().__init__(f"{what} needs the tensorboard package; {EXTRA}")


def require_tensorboard(what: str = "TensorBoard export") -> None:
    """Raise :class:`TensorBoardMissing` unless the writer can be imported."""
    try:
        import tensorboard.summary.writer.event_file_writer  # noqa: F401
    except ImportError:
        raise TensorBoardMissing(what) from None


class TensorBoardWriter:
    """Scalars and text into one event file in ``logdir``."""

    def __init__(self, logdir: str | os.PathLike[str], flush_secs: float = 10.0) -> None:
        require_tensorboard()
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.text.summary_v2 import text_pb
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        Path(logdir).mkdir(parents=True, exist_ok=True)
        self._event = event_pb2.Event
        self._summary = summary_pb2.Summary
        self._text_pb = text_pb
        self._writer = EventFileWriter(str(logdir), flush_secs=flush_secs)
        self.tags: set[str] = set()
        self.scalars_written = 0

    def scalars(self, step: int, values: dict[str, float], wall_time: float | None = None) -> None:
        if not values:
            return
        # simple_value scalars, as torch's SummaryWriter writes them: every TensorBoard
        # version and its EventAccumulator read them as scalars.
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=value) for tag, value in values.items()])
        self._writer.add_event(self._event(step=int(step), wall_time=wall_time or time.time(), summary=summary))
        self.tags.update(values)
        self.scalars_written += len(values)

    def text(self, tag: str, text: str, step: int = 0, wall_time: float | None = None) -> None:
        summary = self._text_pb(tag, text)
        self._writer.add_event(self._event(step=int(step), wall_time=wall_time or time.time(), summary=summary))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def config_markdown(config_text: str) -> str:
    """The config as TensorBoard's text plugin shows it (Markdown: an indented code block)."""
    return "\n".join("    " + line for line in config_text.rstrip("\n").splitlines())


@dataclass
class ExportSummary:
    """What an export wrote."""

    scalars: int = 0
    tags: list[str] = field(default_factory=list)


def _step(record: dict[str, Any]) -> int | None:
    value = number(record.get("iter"))
    return int(value) if value is not None else None


def export_run(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> ExportSummary:
    """Write every scalar of ``run_dir``'s records (and its config) as TensorBoard events in ``out_dir``.

    Reads the run tolerantly (``report.rundir``): a damaged or still-running run exports
    what it has; records without an iteration are skipped.
    """
    require_tensorboard()
    from cockpit.report.rundir import read_run_dir

    run = read_run_dir(run_dir)
    writer = TensorBoardWriter(out_dir)
    try:
        if run.config_text:
            writer.text("config", config_markdown(run.config_text), step=0)
        for records, to_scalars in ((run.train, train_scalars), (run.evals, eval_scalars)):
            for record in records:
                step = _step(record)
                if step is not None:
                    writer.scalars(step, to_scalars(record), number(record.get("timestamp")))
    finally:
        writer.close()
    return ExportSummary(scalars=writer.scalars_written, tags=sorted(writer.tags))
