"""``build_report``: read a run directory, write report.html, report.md + PNGs and metrics.csv.

This is what ``cockpit report RUN_DIR [-o OUT]`` and the cockpit's ``r`` key call. It is
safe to call while the run is still writing (it reads each file once, tolerating a
half-written last line) and from a worker thread (no pyplot, no global state).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cockpit.engine.events import ProgressTask
from cockpit.progress import ProgressMeter, ProgressSink
from cockpit.report.content import build_document
from cockpit.report.export import write_metrics_csv
from cockpit.report.html import render_html
from cockpit.report.markdown import figure_filename, render_markdown
from cockpit.report.rundir import read_run_dir
from cockpit.runfiles.jsonl import write_atomic


@dataclass(frozen=True)
class ReportPaths:
    """Where the report's files went."""

    html: Path
    markdown: Path
    csv: Path
    directory: Path
    skipped: tuple[str, ...] = ()
    """One line per run file whose damaged lines were skipped (empty when all read cleanly)."""


STAGES = ("read the run directory", "analyse and plot", "write report.html", "write report.md", "write metrics.csv")
"""What ``build_report`` reports progress over (one unit each)."""


def build_report(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    progress: ProgressSink | None = None,
) -> ReportPaths:
    """Build the report of ``run_dir`` into ``out_dir`` (default: ``<run_dir>/report``).

    Raises ``FileNotFoundError`` only when ``run_dir`` is not a folder; anything missing
    or damaged inside it is described in the report instead. ``progress`` hears each of
    :data:`STAGES` as it finishes (a long run's report takes seconds).
    """
    source = Path(run_dir).expanduser()
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: not a run directory (no such folder)")
    meter = ProgressMeter(ProgressTask.REPORT, len(STAGES), progress, detail="stages", interval=0.0)
    run = read_run_dir(source)
    meter.advance()
    directory = Path(out_dir).expanduser() if out_dir is not None else run.path / "report"
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / "metrics.csv"
    document = build_document(run)
    meter.advance()

    html_path = directory / "report.html"
    write_atomic(html_path, render_html(document).encode("utf-8"))
    for figure in document.figures():
        write_atomic(directory / figure_filename(figure), figure.png)
    meter.advance()
    md_path = directory / "report.md"
    write_atomic(md_path, render_markdown(document).encode("utf-8"))
    meter.advance()
    write_metrics_csv(run, csv_path)
    meter.advance()
    return ReportPaths(html=html_path, markdown=md_path, csv=csv_path, directory=directory, skipped=tuple(run.skipped))
