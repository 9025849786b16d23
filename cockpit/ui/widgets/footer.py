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

PINNED_ACTIONS: tuple[str, ...] = ("quit_cockpit", "quit_from_editor", "help", "help_from_editor")
"""Footer keys that are never pushed off a narrow terminal (in this order)."""


class CockpitFooter(Footer):
    """A footer whose Quit and Help keys are always visible."""

    def compose(self) -> ComposeResult:
        keys = list(super().compose())

        def rank(widget) -> int:
            action = getattr(widget, "action", None) if isinstance(widget, FooterKey) else None
            return PINNED_ACTIONS.index(action) if action in PINNED_ACTIONS else len(PINNED_ACTIONS)

        # sorted() is stable: the rest keep Textual's order (focused pane first, then the app).
        yield from sorted(keys, key=rank)
