"""What the cockpit's keys do now: availability, the help window and the command palette.

One rule (:meth:`KeyMap.unavailable`) decides whether an action can run at this moment;
the footer (through ``check_action``), the keys themselves and the palette all follow it,
so a key the footer shows does what it says, and a palette entry that cannot run says why.
"""

from __future__ import annotations

from typing import Iterable

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widget import Widget

from cockpit.ui.modals import HelpScreen

RUN_ENDED = "The run has ended: edit the Config pane (5, enter), apply (ctrl+s), then R restarts it."


class KeyMap:
    """Mixed into the cockpit app: expects its ``BINDINGS``, ``PANES``, ``panes``, ``model``,
    ``link``, ``config_editor``, ``engine_factory`` and the action sets ``_MAIN_ACTIONS``,
    ``_TYPED_ACTIONS``, ``_ENGINE_ACTIONS``."""

    @classmethod
    def key_bindings(cls) -> list[Binding]:
        """The app's bindings, a subclass's replacing a base's on the same key (as Textual merges them)."""
        merged: dict[str, Binding] = {}
        # Most derived first, so each class's own order (q and ? first) leads the list.
        for base in cls.__mro__:
            for binding in base.__dict__.get("BINDINGS", []):
                if isinstance(binding, Binding):
                    merged.setdefault(binding.key, binding)
        return list(merged.values())

    def unavailable(self, action: str) -> str | None:
        """Why ``action`` cannot run now (None when it can): one rule for keys, footer and palette."""
        if action in self._MAIN_ACTIONS and isinstance(self.screen, ModalScreen):
            return "close the dialog first"
        if self.config_editor.is_mounted and self.config_editor.editing and action in self._TYPED_ACTIONS:
            return "the Config pane is editing (esc stops editing)"
        if action in self._ENGINE_ACTIONS and self.model.state.is_terminal:
            return RUN_ENDED
        if action == "nan_recovery" and not self.model.checklist.get("nonfinite_loss").flagged:
            return "no non-finite loss to recover from"
        if action == "report" and self.link.run_dir is None:
            return "no run folder yet: the run has not started"
        if action == "restart_run":
            if self.engine_factory is None:
                return "this cockpit cannot restart the run; restart it from the shell"
            if self.config_editor.pending_restart is None and self.model.startup_failure is None:
                return "nothing to restart with: edit the Config pane (5, enter) and apply it (ctrl+s) first"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.unavailable(action) is None

    def action_help(self) -> None:
        names = {"plus": "+", "minus": "-", "question_mark": "?"}
        by_action: dict[str, tuple[list[str], str]] = {}
        for binding in self.key_bindings():
            if binding.action.startswith("focus_pane"):
                continue
            keys, text = by_action.setdefault(binding.action, ([], binding.tooltip or binding.description))
            keys.extend(names.get(k, k) for k in binding.key.split(","))
        rows = [(" / ".join(keys), text) for keys, text in by_action.values()]
        titles = [title for _, title in self.PANES]
        rows.append((f"1 … {len(titles)}", "jump to " + ", ".join(titles)))
        self.push_screen(HelpScreen(rows))

    # -- command palette ----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        listed: set[str] = set()
        for binding in self.key_bindings():
            if binding.action in listed or binding.action.startswith("focus_pane"):
                continue
            listed.add(binding.action)
            key = binding.key_display or binding.key.split(",")[0]
            yield SystemCommand(
                f"{binding.description} ({key})",
                binding.tooltip or binding.description,
                lambda action=binding.action, title=binding.description: self._run_from_palette(action, title),
            )
        for number, (_, title) in enumerate(self.PANES, start=1):
            yield SystemCommand(f"Go to {title} ({number})", f"Focus the {title} pane",
                                lambda n=number: self.action_focus_pane(n))
        yield from self._pane_commands()

    def _pane_commands(self) -> Iterable[SystemCommand]:
        """Each pane's own keys, by name: the palette jumps to the pane and runs the action there."""
        names = {"plus": "+", "minus": "-", "question_mark": "?", "enter": "enter"}
        for number, (pane_id, title) in enumerate(self.PANES, start=1):
            pane = self.panes[pane_id]
            for binding in type(pane).__dict__.get("BINDINGS", []):
                if not isinstance(binding, Binding) or binding.action in ("quit_from_editor", "help_from_editor"):
                    continue
                key = names.get(binding.key.split(",")[0], binding.key.split(",")[0])
                yield SystemCommand(
                    f"{title}: {binding.tooltip or binding.description} ({key})", f"In the {title} pane",
                    lambda n=number, p=pane, a=binding.action: self._pane_action(n, p, a),
                )

    def _pane_action(self, number: int, pane: Widget, action: str) -> None:
        self.action_focus_pane(number)
        self.call_later(self.run_action, action, pane)

    def _run_from_palette(self, action: str, title: str) -> None:
        self.call_later(self._palette_action, action, title)

    async def _palette_action(self, action: str, title: str) -> None:
        # The palette lists every action; one that cannot run now says why instead of doing nothing.
        reason = self.unavailable(action)
        if reason is not None:
            self.notify(reason, title=f"{title}: not now", severity="warning")
            return
        await self.run_action(action)
