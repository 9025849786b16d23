"""The memory pane: CUDA allocated / reserved / peak against total, utilisation, RSS, OOMs.

Every key is optional: a CPU run has only ``rss_mb``, a CUDA run without NVML has no
``utilization``. Whatever is missing reads "n/a"; nothing here needs a GPU.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Sparkline, Static

from cockpit.ui.state import CockpitState, format_mb
from cockpit.ui.static_text import show_text


def bar(fraction: float | None, width: int, style: str) -> Content:
    """``███░░░`` of ``width`` cells; empty (muted) when the fraction is unknown."""
    width = max(4, width)
    if fraction is None:
        return Content.styled("·" * width, "$text-muted")
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return Content.assemble(("█" * filled, style), ("░" * (width - filled), "$text-muted"))


def _style_for(fraction: float | None) -> str:
    if fraction is None:
        return "$text-muted"
    if fraction >= 0.9:
        return "$text-error"
    if fraction >= 0.75:
        return "$text-warning"
    return "$text-success"


class MemoryPanel(Vertical, can_focus=True):
    """Bars for CUDA memory, a sparkline of it (or of RSS on CPU), the OOM count."""

    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    MemoryPanel > .readings { height: auto; }
    MemoryPanel > Sparkline { height: 3; margin: 1 0 0 0; }
    MemoryPanel > .ooms { height: auto; margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(classes="readings")
        yield Sparkline([], summary_function=max)
        yield Static(classes="ooms")

    def on_mount(self) -> None:
        self.border_title = "2 Memory"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._state: CockpitState | None = None

    def on_resize(self) -> None:
        if self._state is not None:
            self.show_state(self._state)

    def show_state(self, state: CockpitState) -> None:
        self._state = state
        memory = state.memory
        width = max(8, self.content_region.width - 26)
        total = memory.get("total_mb")
        lines: list[Content] = []
        cuda = "allocated_mb" in memory
        if cuda:
            for label, key in (("allocated", "allocated_mb"), ("reserved", "reserved_mb"), ("peak", "peak_mb")):
                value = memory.get(key)
                fraction = value / total if value is not None and total else None
                lines.append(
                    Content.assemble(
                        f"{label:<9} ", bar(fraction, width, _style_for(fraction)), f" {format_mb(value):>9}"
                    )
                )
            lines.append(Content(f"{'total':<9} {format_mb(total)}"))
            util = memory.get("utilization")
            lines.append(Content(f"{'GPU util':<9} " + (f"{util:.0f}%" if util is not None else "n/a (no NVML)")))
        else:
            where = state.device or "waiting for the first step"
            lines.append(Content.styled(f"CUDA      n/a ({where})", "$text-muted"))
        lines.append(Content(f"{'RSS':<9} {format_mb(memory.get('rss_mb'))}"))
        show_text(self.query_one(".readings", Static), Content("\n").join(lines))
        spark = self.query_one(Sparkline)
        spark.data = list(state.memory_history)
        spark.tooltip = "CUDA allocated over time" if cuda else "process RSS over time"
        if state.oom_events:
            iters = ", ".join(str(e.iter) for e in state.oom_events[-6:])
            more = "…" if len(state.oom_events) > 6 else ""
            ooms = Content.styled(f"OOM events: {len(state.oom_events)} (it {more}{iters})", "$text-error bold")
        else:
            ooms = Content.styled("OOM events: 0", "$text-muted")
        show_text(self.query_one(".ooms", Static), ooms)
