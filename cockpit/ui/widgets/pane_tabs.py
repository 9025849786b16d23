"""The pane switcher shown when the panes are tabbed (narrow terminals): ``1 Losses 2 Memory …``."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class PaneTabs(Static):
    """One label per pane, the active one reversed; clicking a label focuses its pane."""

    DEFAULT_CSS = """
    PaneTabs { height: 1; padding: 0 1; background: $panel; }
    """

    def __init__(self, titles: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.titles = titles

    def show_active(self, active: int) -> None:
        parts = []
        for number, title in enumerate(self.titles, start=1):
            style = "reverse bold" if number - 1 == active else "$text-muted"
            parts.append(Content.styled(f" {number} {title} ", style).stylize(f"@click=app.focus_pane({number})"))
        self.update(Content(" ").join(parts))
