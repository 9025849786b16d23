"""Moving between the cockpit's panes by keyboard: jump, cycle, maximise, follow focus.

A mixin of :class:`cockpit.ui.app.CockpitApp` (which owns ``PANES``, ``panes``, ``tabs``
and ``_active_pane``); kept apart so the app module stays about wiring.
"""

from __future__ import annotations

from textual.widget import Widget

from cockpit.ui.widgets.checklist_panel import ChecklistPanel
from cockpit.ui.widgets.config_editor import ConfigEditor


class PaneNavigation:
    """Pane keys: ``1``-``6``, ``tab`` / ``shift+tab``, ``f``; the active pane follows focus."""

    def pane(self, index: int) -> Widget:
        return self.panes[self.PANES[index][0]]

    def focus_pane_widget(self, index: int) -> None:
        pane = self.pane(index)
        target: Widget = pane
        if isinstance(pane, ChecklistPanel):
            target = pane.query_one("OptionList")
        elif isinstance(pane, ConfigEditor):
            target = pane.query_one("TextArea")
        target.focus()

    def _pane_of(self, widget: Widget | None) -> int | None:
        node = widget
        while node is not None:
            for index, (pane_id, _) in enumerate(self.PANES):
                if getattr(node, "id", None) == pane_id:
                    return index
            node = node.parent if isinstance(node.parent, Widget) else None
        return None

    def _set_active_pane(self, index: int) -> None:
        self._active_pane = index
        for i in range(len(self.PANES)):
            self.pane(i).set_class(i == index, "-active")
        self.tabs.show_active(index)

    def on_descendant_focus(self, event) -> None:
        index = self._pane_of(self.focused)
        if index is not None and index != self._active_pane:
            self._set_active_pane(index)

    def action_focus_pane(self, number: int) -> None:
        index = number - 1
        if self.screen.maximized is not None:
            self.screen.minimize()
        self._set_active_pane(index)
        self.focus_pane_widget(index)

    def action_next_pane(self) -> None:
        self.action_focus_pane((self._active_pane + 1) % len(self.PANES) + 1)

    def action_previous_pane(self) -> None:
        self.action_focus_pane((self._active_pane - 1) % len(self.PANES) + 1)

    def action_maximize_pane(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        else:
            self.screen.maximize(self.pane(self._active_pane), container=False)
