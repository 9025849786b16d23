"""``cockpit compare RUN_DIR RUN_DIR... [-o OUT]``: runs side by side, in HTML and Markdown.

One self-contained ``compare.html`` (plots inline as base64 PNG, no network) and
``compare.md`` with its PNGs beside it, answering "is this run better than the last one,
at the same iteration, and why": every metric overlaid per run, a side-by-side table
with the best value of each row marked, the config fields that differ, whether the
runs saw the same data, and each run's interventions. Damaged or still-running runs
are read as they are; what each lacks is said at the top.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from cockpit.report import analysis as an
from cockpit.report import compare_analysis as ca
from cockpit.report.compare_plots import GROUP_TITLES, colour_name, group_figure
from cockpit.report.document import Document, Figure, Section, Subheading, Table, Text
from cockpit.report.html import render_html
from cockpit.report.markdown import figure_filename, render_markdown
from cockpit.report.rundir import RunDir, read_run_dir
from cockpit.runfiles import write_atomic

BEST = "★"


class CompareError(Exception):
    """The comparison cannot be made; ``str()`` is a one-line reason."""


@dataclass(frozen=True)
class ComparePaths:
    """Where the comparison's files went."""

    html: Path
    markdown: Path
    directory: Path


def _runs_section(runs: list[RunDir], labels: list[str]) -> Section:
    section = Section("runs", "Runs")
    rows = []
    for index, (run, label) in enumerate(zip(runs, labels)):
        status = an.run_status(run)
        iteration, _ = an.last_iteration(run)
        rows.append([
            label, colour_name(index), str(run.path), status.value + (f" ({status.reason})" if status.reason else ""),
            "n/a" if iteration is None else f"{iteration:,}", an.fmt_time(an.start_time(run)),
        ])
    section.add(Table(["run", "plot colour", "folder", "status", "iteration", "started"], rows))
    for run, label in zip(runs, labels):
        if run.missing or run.problems:
            section.add(Subheading(f"{label}: missing or damaged"))
            section.add(*(Text(line, "missing") for line in run.missing))
            section.add(*(Text(line, "problem") for line in run.problems))
    return section


def _table_section(runs: list[RunDir], labels: list[str]) -> Section:
    section = Section("table", "Side by side")
    rows, styles = [], []
    for row in ca.table(runs, labels):
        cells = [f"{row.values[label]} {BEST}" if label in row.best else row.values[label] for label in labels]
        rows.append([row.label, *cells])
        styles.append("")
    caption = (f"{BEST} marks the best run of a row: higher AP and images/s, shorter wall time, less memory. "
               "Final = the last evaluation; n/a = not recorded (no evaluation yet, a damaged record, or COCO's "
               "'undefined' for a size with no objects).")
    return section.add(Table(["", *labels], rows, caption=caption, row_styles=styles, style="compare"))


def _curves_section(runs: list[RunDir], labels: list[str]) -> Section:
    section = Section("curves", "Curves by iteration")
    curves = ca.curves(runs, labels)
    if not curves:
        return section.add(Text("No run has training records or evaluations yet: nothing to plot.", "missing"))
    section.add(Text("Each run in its own colour (legend above each figure); training signals raw (faint) with "
                     "an EMA over them, evaluations as points.", "note"))
    for group, title in GROUP_TITLES.items():
        png = group_figure(group, curves, labels)
        if png is not None:
            keys = ", ".join(curve.key for curve in curves if curve.group == group and curve.series)
            section.add(Subheading(title), Figure(f"compare-{group}", png, f"{title}: {keys}"))
    return section


def _config_section(runs: list[RunDir], labels: list[str]) -> Section:
    section = Section("config", "Config differences")
    headers, rows = ca.config_differences(runs, labels)
    lacking = [label for run, label in zip(runs, labels) if run.config is None]
    if lacking:
        section.add(Text(f"No readable config for {', '.join(lacking)} (config.toml missing or invalid, no run_started event).", "missing"))
    if rows:
        section.add(Table(headers, rows, caption="Only the fields whose values differ between the runs."))
    else:
        section.add(Text("None: the runs' configs are identical." if not lacking else "No difference among the readable configs."))
    return section


def _data_section(runs: list[RunDir], labels: list[str]) -> Section:
    section = Section("data", "Data")
    rows, warnings = ca.data_comparison(runs, labels)
    section.add(*(Text(line, "problem") for line in warnings))
    if not warnings and all(row[1] != "-" for row in rows):
        section.add(Text("Same data: every run recorded the same annotation hashes and image counts."))
    section.add(Table(["run", "split", "source", "images", "sha256 (first 12)"], rows,
                      caption="The dataset fingerprint each run recorded when it started."))
    return section


def _interventions_section(runs: list[RunDir], labels: list[str]) -> Section:
    section = Section("interventions", "Interventions")
    section.add(Text("LR changes, pauses, NaN rewinds, OOM recoveries, flags and errors, per run.", "note"))
    for run, label in zip(runs, labels):
        section.add(Subheading(label))
        if not run.has_events:
            section.add(Text("events.jsonl is missing: no timeline for this run.", "missing"))
            continue
        start = an.start_time(run)
        rows = [[_elapsed(r.time, start), "" if r.iter is None else f"{r.iter:,}", r.category,
                 r.text + (f" (x{r.count})" if r.count > 1 else "")]
                for r in ca.interventions(run)[: an.TIMELINE_LIMIT]]
        section.add(Table(["elapsed", "iteration", "what", "detail"], rows, style="timeline") if rows else Text("None."))
    return section


def _elapsed(stamp: float | None, start: float | None) -> str:
    if stamp is None or start is None:
        return ""
    return an.fmt_duration(max(0.0, stamp - start))


def build_document(runs: list[RunDir]) -> Document:
    labels = ca.run_labels(runs)
    document = Document(
        title=f"cockpit compare: {' vs '.join(labels)}",
        subtitle=f"{len(runs)} runs, compared {an.fmt_time(time.time())}",
    )
    for make in (_runs_section, _table_section, _curves_section, _config_section, _data_section, _interventions_section):
        document.sections.append(make(runs, labels))
    return document


def default_output() -> Path:
    return Path(f"compare-{time.strftime('%Y%m%d-%H%M%S')}")


def build_comparison(run_dirs: list[str | os.PathLike[str]], out_dir: str | os.PathLike[str] | None = None) -> ComparePaths:
    """Compare ``run_dirs`` into ``out_dir`` (default ``./compare-<timestamp>``).

    Raises :class:`CompareError` when fewer than two folders are given or one is not a
    folder; anything missing or damaged inside a run is described in the document.
    """
    paths = [Path(p).expanduser() for p in run_dirs]
    if len(paths) < 2:
        raise CompareError("compare needs at least two run directories")
    for path in paths:
        if not path.is_dir():
            raise CompareError(f"{path}: no such run directory")
    runs = [read_run_dir(path) for path in paths]
    directory = Path(out_dir).expanduser() if out_dir is not None else default_output()
    directory.mkdir(parents=True, exist_ok=True)
    document = build_document(runs)
    html_path = directory / "compare.html"
    write_atomic(html_path, render_html(document, generator="cockpit compare").encode("utf-8"))
    for figure in document.figures():
        write_atomic(directory / figure_filename(figure), figure.png)
    md_path = directory / "compare.md"
    write_atomic(md_path, render_markdown(document).encode("utf-8"))
    return ComparePaths(html=html_path, markdown=md_path, directory=directory)
