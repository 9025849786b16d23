"""The cockpit's footer: Textual's, with Quit and Help pinned first.

Textual's footer lists bindings left to right and lets the ones that do not fit run off
the right edge; at 80 columns that was Quit and Help. Here they always come first, then
the focused pane's keys, then the cockpit's. What is listed is what works *now*: the app's
and the panes' ``check_action`` hide keys that would do nothing.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PINNED_ACTIONS: tuple[str, ...] = (
    "quit_cockpit", "quit_from_editor", "help", "help_from_editor", "<palette>", "restart_run",
)
"""Footer keys that are never pushed off a narrow terminal, in this order ("<palette>":
ctrl+p; restart only shows while there is something to restart with)."""


class CockpitFooter(Footer):
    """A footer whose Quit, Help and command-palette keys are always visible."""

    def compose(self) -> ComposeResult:
        keys = list(super().compose())

        def rank(widget) -> int:
            if not isinstance(widget, FooterKey):
                return len(PINNED_ACTIONS)
            action = "<palette>" if widget.has_class("-palette-key") else widget.action
            return PINNED_ACTIONS.index(action) if action in PINNED_ACTIONS else len(PINNED_ACTIONS)

        for key in keys:
            if isinstance(key, FooterKey) and key.has_class("-command-palette"):
                # Docked right it covered all but the last cell, where a letter of the key
                # scrolled under it showed through; inline after Help it is always seen.
                key.remove_class("-command-palette")
                key.add_class("-palette-key")
        # sorted() is stable: the rest keep Textual's order (focused pane first, then the app).
        yield from sorted(keys, key=rank)
        self.call_after_refresh(self._hide_cut_keys)

    def on_resize(self) -> None:
        for key in self.query(FooterKey):
            key.display = True
        self.call_after_refresh(self._hide_cut_keys)

    def _hide_cut_keys(self, tries: int = 3) -> None:
        """A key the width cuts off ("r R") is hidden whole; ? and the palette list them all."""
        keys = list(self.query(FooterKey))
        if tries and any(key.display and not key.region.width for key in keys):
            self.call_after_refresh(self._hide_cut_keys, tries - 1)  # not laid out yet
            return
        right = self.region.right
        for key in keys:
            if key.region.width and key.region.right > right:
                key.display = False
