"""The cockpit attached to a detached run (``cockpit attach``).

Everything works as in ``cockpit run``, over a :class:`~cockpit.remote.client.RemoteLink`,
except leaving: ``q`` detaches (the run goes on, paused or not), and stopping the run is
its own key, ``X``, behind a confirmation. A run that has ended, or whose process is gone,
opens read-only: the panes show its record and commands are refused with the reason.
"""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding

from cockpit.config import Config
from cockpit.engine.commands import Command, Stop
from cockpit.remote.client import RemoteLink
from cockpit.ui.app import CockpitApp
from cockpit.ui.modals import ConfirmScreen


class AttachedCockpitApp(CockpitApp):
    """The cockpit over a run in another process: ``q`` detaches, ``X`` stops the run."""

    BINDINGS = [
        Binding("q", "quit_cockpit", "Detach", tooltip="Leave this cockpit; the run goes on", id="quit"),
        Binding("X", "stop_run", "Stop run", key_display="X",
                tooltip="Stop the run (asks first; saves a checkpoint)", id="stop_run"),
    ]
    _MAIN_ACTIONS = CockpitApp._MAIN_ACTIONS | {"stop_run"}

    link: RemoteLink

    def on_mount(self) -> None:
        # Textual runs CockpitApp.on_mount too (handlers of every class in the MRO), so
        # calling it here would subscribe a second bridge after the replay began.
        run = self.link.run_dir.name if self.link.run_dir else "the run"
        if self.link.read_only:
            self.sub_title = f"{run} (read-only)"
            self.notify(f"Read-only: {self.link.read_only_reason}.", title=f"Attached to {run}", timeout=8)
        else:
            self.sub_title = f"{run} (attached)"
            self.notify("q detaches (the run goes on); X stops the run.", title=f"Attached to {run}", timeout=5)

    def unavailable(self, action: str) -> str | None:
        if self.link.read_only and (action == "stop_run" or action in self._ENGINE_ACTIONS):
            return f"this cockpit is read-only: {self.link.read_only_reason}"  # hidden from the footer
        if action == "restart_run":
            return "an attached cockpit cannot restart the run; stop it (X) and run it again from the shell"
        return super().unavailable(action)

    def send(self, command: Command) -> bool:
        if self.link.read_only:
            self.notify(f"This cockpit is read-only: {self.link.read_only_reason}.", title=f"{command.name}: not sent",
                        severity="warning")
            return False
        return super().send(command)

    def action_quit_cockpit(self) -> None:
        """Detach at once: nothing is asked because nothing happens to the run."""
        if self._quitting:
            return
        self._quitting = True
        self._close_and_exit()

    def shutdown(self) -> None:
        self.action_quit_cockpit()

    def action_stop_run(self) -> None:
        if self.link.read_only or self.model.state.is_terminal:
            self.send(Stop(save=True, reason="attached cockpit"))  # says why it is not sent
            return

        def confirmed(yes: bool | None) -> None:
            if yes and self.send(Stop(save=True, reason="stopped from an attached cockpit")):
                self.notify("The run stops at the next iteration boundary and saves a checkpoint.",
                            title="Stopping the run", timeout=6)

        self.push_screen(
            ConfirmScreen(
                "Stop the run?",
                "Training stops at the next iteration boundary and saves a checkpoint; the "
                "background process then exits. `cockpit run --resume` continues it later.",
                yes="Stop the run (y)",
                no="Keep it going (n)",
            ),
            confirmed,
        )


def create_attached_app(link: RemoteLink, config: Config, config_path: str | Path | None = None,
                        **options) -> AttachedCockpitApp:
    """The cockpit over an attached (or read-only) run; ``options`` as for ``create_app``."""
    return AttachedCockpitApp(link, config, config_path, None, **options)
