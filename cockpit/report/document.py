"""A small, format-neutral document model: what the report says, not how it looks.

:mod:`cockpit.report.content` fills it from a run directory; :mod:`cockpit.report.html`
and :mod:`cockpit.report.markdown` each render it. Text here is plain (never markup):
each renderer escapes it for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Text:
    """A paragraph. ``style``: ``plain``, ``note``, ``missing`` (data absent) or ``problem``."""

    text: str
    style: str = "plain"


@dataclass(frozen=True)
class KeyValues:
    """Label/value pairs (the summary, the environment); ``style`` ``card`` boxes them (a flag)."""

    items: list[tuple[str, str]]
    style: str = ""


@dataclass(frozen=True)
class Table:
    """A table of strings; ``row_styles`` (optional, one per row) e.g. ``flagged``, ``ok``."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    row_styles: list[str] = field(default_factory=list)
    style: str = ""
    """A class for the whole table, e.g. ``checklist``."""


@dataclass(frozen=True)
class Figure:
    """A PNG; ``name`` is its file stem beside report.md (``losses`` -> ``losses.png``)."""

    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Code:
    """Preformatted text (the config, a command)."""

    text: str
    caption: str = ""


@dataclass(frozen=True)
class Subheading:
    text: str


Block = Union[Text, KeyValues, Table, Figure, Code, Subheading]


@dataclass
class Section:
    """A titled part of the report; ``id`` is its anchor."""

    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> "Section":
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    """The whole report."""

    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]
