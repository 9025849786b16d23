"""Render a :class:`~cockpit.report.document.Document` as ``report.md`` + PNG files beside it.

GitHub-flavoured Markdown for a repository or a PR description: figures become
``![caption](name.png)`` and the caller writes each PNG next to the Markdown file.
"""

from __future__ import annotations

import re

from cockpit.report.document import Code, Document, Figure, KeyValues, Section, Subheading, Table, Text

_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md_escape(text: object) -> str:
    """Escape Markdown (and inline HTML) so run text shows literally."""
    return _SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def _cell(text: object) -> str:
    return md_escape(text) or " "


def _table(table: Table) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    if table.caption:
        lines.append("")
        lines.append(f"*{md_escape(table.caption)}*")
    return "\n".join(lines)


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def figure_filename(figure: Figure) -> str:
    return f"{figure.name}.png"


def _block(block: object) -> str:
    if isinstance(block, Text):
        prefix = {"missing": "> **Missing:** ", "problem": "> **Problem:** ", "note": ""}.get(block.style, "")
        return prefix + md_escape(block.text)
    if isinstance(block, KeyValues):
        return "\n".join(f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in block.items)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return f"![{md_escape(block.caption)}]({figure_filename(block)})\n\n*{md_escape(block.caption)}*"
    if isinstance(block, Code):
        fence = _fence(block.text)
        caption = f"{md_escape(block.caption)}\n\n" if block.caption else ""
        return f"{caption}{fence}\n{block.text}\n{fence}"
    if isinstance(block, Subheading):
        return f"### {md_escape(block.text)}"
    return md_escape(block)


def _section(section: Section) -> str:
    return "\n\n".join([f"## {md_escape(section.title)}", *(_block(b) for b in section.blocks)])


def render_markdown(document: Document) -> str:
    """The report as Markdown text; its figures are referenced by :func:`figure_filename`."""
    contents = " · ".join(f"[{md_escape(s.title)}](#{s.title.lower().replace(' ', '-')})" for s in document.sections)
    parts = [f"# {md_escape(document.title)}", f"*{md_escape(document.subtitle)}*", contents]
    parts.extend(_section(s) for s in document.sections)
    return "\n\n".join(parts) + "\n"
