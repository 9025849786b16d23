"""``build_report``: read a run directory, write report.html, report.md + PNGs and metrics.csv.

This is what ``cockpit report RUN_DIR [-o OUT]`` and the cockpit's ``r`` key call. It is
safe to call while the run is still writing (it reads each file once, tolerating a
half-written last line) and from a worker thread (no pyplot, no global state).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cockpit.filemode import make_ordinary
from cockpit.report.content import build_document
from cockpit.report.export import write_metrics_csv
from cockpit.report.html import render_html
from cockpit.report.markdown import figure_filename, render_markdown
from cockpit.report.rundir import read_run_dir


@dataclass(frozen=True)
class ReportPaths:
    """Where the report's files went."""

    html: Path
    markdown: Path
    csv: Path
    directory: Path


def _write_atomic(path: Path, data: bytes) -> None:
    # A reader (a browser refreshing, a second `r` press) never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        make_ordinary(fd)  # mkstemp's 0600 would keep a colleague from opening the report
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None) -> ReportPaths:
    """Build the report of ``run_dir`` into ``out_dir`` (default: ``<run_dir>/report``).

    Raises ``FileNotFoundError`` only when ``run_dir`` is not a folder; anything missing
    or damaged inside it is described in the report instead.
    """
    source = Path(run_dir).expanduser()
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: not a run directory (no such folder)")
    run = read_run_dir(source)
    directory = Path(out_dir).expanduser() if out_dir is not None else run.path / "report"
    directory.mkdir(parents=True, exist_ok=True)
    document = build_document(run)

    html_path = directory / "report.html"
    _write_atomic(html_path, render_html(document).encode("utf-8"))
    for figure in document.figures():
        _write_atomic(directory / figure_filename(figure), figure.png)
    md_path = directory / "report.md"
    _write_atomic(md_path, render_markdown(document).encode("utf-8"))
    csv_path = write_metrics_csv(run, directory / "metrics.csv")
    return ReportPaths(html=html_path, markdown=md_path, csv=csv_path, directory=directory)
