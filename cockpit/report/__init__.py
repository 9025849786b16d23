"""Run reports: HTML and Markdown built from a run directory.

``build_report(run_dir, out_dir=None) -> ReportPaths`` is the entry point. Imports stay
lazy (``cockpit --help`` must not pay for matplotlib or pydantic): the names below are
loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReportPaths", "build_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cockpit.report import build

        return getattr(build, name)
    raise AttributeError(name)
