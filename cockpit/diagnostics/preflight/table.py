"""``cockpit check``'s plain-text table: a row per check, a column per split, then the problems."""

from __future__ import annotations

import textwrap

from cockpit.diagnostics.flags import CheckState, Verdict
from cockpit.diagnostics.preflight.report import PreflightReport

_MARK = {None: "ok", "info": "info", "warning": "WARN", "error": "ERROR"}


def _cell(verdict: Verdict | None) -> str:
    if verdict is None:
        return ""
    if verdict.state == CheckState.NOT_CHECKED:
        return "-"
    return _MARK[verdict.flag.severity.value if verdict.flag else None]


def format_table(report: PreflightReport, width: int = 100) -> str:
    """A plain-text table: one row per check with a column per split, then every problem
    with its evidence, cause and fix, then the split statistics."""
    lines = ["Pre-flight check", ""] + _check_rows(report) + _problem_lines(report, width) + [""]
    lines += _split_lines(report)
    counts = report.counts()
    verdict = "FAILED" if report.has_errors else "passed"
    lines += ["", f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"]
    return "\n".join(lines)


def _check_rows(report: PreflightReport) -> list[str]:
    names = list(report.splits)
    by_rule: dict[str, dict[str, Verdict]] = {}
    for split, verdict in report.verdicts():
        by_rule.setdefault(verdict.rule, {})[split] = verdict
    titles = {rule: next(iter(cells.values())).title for rule, cells in by_rule.items()}
    title_w = max([len("check")] + [len(t) for t in titles.values()])
    col_w = max([6] + [len(n) for n in names])
    header = "  " + "check".ljust(title_w) + "".join("  " + n.ljust(col_w) for n in names)
    lines = [header, "  " + "-" * (len(header) - 2)]
    for rule, cells in by_rule.items():  # dicts keep the order rules were first seen
        lines.append("  " + titles[rule].ljust(title_w) + "".join("  " + _cell(cells.get(n)).ljust(col_w) for n in names))
    return lines


def _problem_lines(report: PreflightReport, width: int) -> list[str]:
    flagged = report.flagged()
    if not flagged:
        return []

    def wrap(label: str, text: str) -> list[str]:
        return textwrap.wrap(text, width=width, initial_indent=f"    {label}", subsequent_indent=" " * (4 + len(label)))

    lines = ["", "Problems:"]
    rank = {"error": 0, "warning": 1, "info": 2}
    for split, v in sorted(flagged, key=lambda sv: rank[sv[1].flag.severity.value]):
        flag = v.flag
        lines.append(f"  [{flag.severity.value.upper()}] {v.title} ({split})")
        lines += wrap("evidence: ", flag.evidence)
        lines += wrap("cause:    ", flag.likely_cause)
        lines += wrap("fix:      ", flag.fix)
    return lines


def _split_lines(report: PreflightReport) -> list[str]:
    lines = []
    for name, scan in report.splits.items():
        s = scan.summary
        lines.append(
            f"  {name}: {s.get('images', 0)} images, {s.get('boxes', 0)} boxes, "
            f"{s.get('images_without_objects', 0)} without objects"
        )
        if s.get("class_histogram"):
            lines.append("    classes:    " + ", ".join(f"{k} {v}" for k, v in s["class_histogram"].items()))
        if s.get("box_size_histogram"):
            lines.append("    box sizes:  " + ", ".join(f"{k} {v}" for k, v in s["box_size_histogram"].items())
                         + "  (sqrt(area), px)")
    return lines
