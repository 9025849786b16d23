"""Render a :class:`~cockpit.report.document.Document` as one self-contained HTML file.

Everything is inline: CSS in a ``<style>`` element, plots as ``data:image/png;base64``
URIs. No script, font, stylesheet or image is loaded from anywhere -- the file must
open on a laptop without network, from an e-mail or a PR attachment. All text from the
run (names, paths, evidence, tracebacks) is escaped.
"""

from __future__ import annotations

import base64
from html import escape

from cockpit.report.document import Code, Document, Figure, KeyValues, Section, Subheading, Table, Text

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --accent: #1f5fa8;
        --bad: #b03a2e; --bad-bg: #fdecea; --ok: #1e7b45; --warn-bg: #fff7e0; --code-bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #ffffff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding: 20px 32px 12px; border-bottom: 3px solid var(--accent); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); font-size: 12px; word-break: break-all; }
nav { padding: 8px 32px; border-bottom: 1px solid var(--line); font-size: 13px;
      display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
main { padding: 0 32px 40px; max-width: 1200px; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin: 0 0 12px; }
h3 { font-size: 14px; margin: 18px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
p { margin: 6px 0; }
p.note { color: var(--muted); }
p.missing { background: var(--warn-bg); border-left: 4px solid #e0a800; padding: 6px 10px; }
p.problem { background: var(--bad-bg); border-left: 4px solid var(--bad); padding: 6px 10px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 6px 0 12px; }
dl.kv dt { font-weight: 600; color: var(--muted); }
dl.kv dd { margin: 0; word-break: break-word; }
dl.card { border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 3px; padding: 8px 12px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 12.5px; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 12px; padding-top: 4px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: var(--bad-bg); }
table.checklist tr.flagged td:nth-child(3) { color: var(--bad); font-weight: 700; }
table.checklist tr.ok td:nth-child(3) { color: var(--ok); }
tr.unchecked td { color: var(--muted); }
tr.best td { background: #e8f4ea; font-weight: 600; }
table.compare td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.compare td:first-child { text-align: left; font-weight: 600; }
table.timeline td:nth-child(-n+3) { white-space: nowrap; }
tr.flag td, tr.error td { background: var(--bad-bg); }
tr.lr-user td, tr.pause td { background: var(--warn-bg); }
pre { background: var(--code-bg); border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto;
      font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; white-space: pre-wrap; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { flex: 0 1 48%; margin: 0; }
footer { color: var(--muted); font-size: 11px; padding: 12px 32px; border-top: 1px solid var(--line); }
@media print {
  body { font-size: 10.5pt; }
  nav { display: none; }
  header, main, footer { padding-left: 0; padding-right: 0; }
  main { max-width: none; }
  section { break-inside: auto; }
  h2, h3 { break-after: avoid; }
  figure, tr, dl.kv { break-inside: avoid; }
  pre { white-space: pre-wrap; word-break: break-all; }
  .table-wrap { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return value == "n/a"


def _table(table: Table) -> str:
    table_cls = f' class="{_e(table.style)}"' if table.style else ""
    out = [f'<div class="table-wrap"><table{table_cls}>']
    if table.caption:
        out.append(f"<caption>{_e(table.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in table.headers) + "</tr></thead><tbody>")
    for index, row in enumerate(table.rows):
        style = table.row_styles[index] if index < len(table.row_styles) else ""
        cls = f' class="{_e(style)}"' if style else ""
        cells = "".join(f'<td class="num">{_e(c)}</td>' if _looks_numeric(c) else f"<td>{_e(c)}</td>" for c in row)
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(figure.caption)}">'
        f"<figcaption>{_e(figure.caption)}</figcaption></figure>"
    )


def _block(block: object) -> str:
    if isinstance(block, Text):
        cls = f' class="{_e(block.style)}"' if block.style != "plain" else ""
        return f"<p{cls}>{_e(block.text)}</p>"
    if isinstance(block, KeyValues):
        cls = "kv " + _e(block.style) if block.style else "kv"
        return f'<dl class="{cls}">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in block.items) + "</dl>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Code):
        caption = f"<p class=\"note\">{_e(block.caption)}</p>" if block.caption else ""
        return f"{caption}<pre>{_e(block.text)}</pre>"
    if isinstance(block, Subheading):
        return f"<h3>{_e(block.text)}</h3>"
    return f"<p>{_e(block)}</p>"


def _section(section: Section) -> str:
    parts = [f'<section id="{_e(section.id)}"><h2>{_e(section.title)}</h2>']
    # Previews side by side: four small images read better as a grid than a column.
    figures_only = section.id == "previews"
    gallery: list[str] = []
    for block in section.blocks:
        if figures_only and isinstance(block, Figure):
            gallery.append(_figure(block))
            continue
        parts.append(_block(block))
    if gallery:
        parts.append('<div class="gallery">' + "".join(gallery) + "</div>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(document: Document, generator: str = "cockpit report") -> str:
    """The report as one HTML string (UTF-8, no external references)."""
    nav = "".join(f'<a href="#{_e(s.id)}">{_e(s.title)}</a>' for s in document.sections)
    body = "\n".join(_section(s) for s in document.sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(document.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(document.title)}</h1><p>{_e(document.subtitle)}</p></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n"
        f"<footer>Written by {_e(generator)}. Self-contained: no network resources.</footer>\n"
        "</body>\n</html>\n"
    )
