"""What the cockpit does to the run as a whole, off the UI thread: follow the engine's live
config, restart with an edited config, explain a run that could not start, build the report.

A mixin of :class:`cockpit.ui.app.CockpitApp`; its ``@on`` message handlers stay in the
app (Textual collects those only from message-pump classes), the work lives here.
"""

from __future__ import annotations

from textual import work

from cockpit.config import LIVE_FIELDS, Config
from cockpit.engine.commands import Stop
from cockpit.engine.events import Severity, StartupFailed, StartupPhase
from cockpit.engine.link import EngineLink
from cockpit.ui.modals import StartupFailedScreen
from cockpit.ui.widgets.config_editor import ConfigEditor
from cockpit.ui.state import CHECKLIST, LABELS, LOSSES, MEMORY, PREVIEW, STATUS, CockpitState


class RunActions:
    """Live-config following, restart and report for :class:`~cockpit.ui.app.CockpitApp`."""

    def _follow_engine_config(self, data: dict) -> None:
        """The engine's effective live fields (LR keys, patches, a resumed LR) become the running ones."""
        live = {}
        for dotted in LIVE_FIELDS:
            section, _, key = dotted.partition(".")
            values = data.get(section)
            value = values.get(key) if isinstance(values, dict) else None
            if value is not None and value != getattr(getattr(self.config, section), key):
                live[dotted] = value
        if not live:
            return
        try:
            config = self.config.copy_with(live)
        except ValueError:
            return  # an engine of another version: keep showing what we have
        self.config = config
        self.config_editor.follow_engine(config)

    def action_restart_run(self) -> None:
        if self.config_editor.pending_restart is None and self.model.startup_failure is not None:
            # The run never started: R tries again (the data may be fixed on disk by now).
            self._restart_requested(ConfigEditor.RestartRequested(self.config_editor.running))
            return
        self.config_editor.action_restart()

    def _startup_failed(self, event: StartupFailed) -> None:
        rows = [row for row in self.model.checklist.flagged() if row.severity is Severity.ERROR] if event.preflight else []
        hint = ("Nothing was trained. q quits; esc closes this window (the Checklist pane keeps the details). "
                "Fix the data, or edit the config (5, enter; ctrl+s applies), then R checks again and starts.")

        def chosen(quit_now: bool | None) -> None:
            if quit_now:
                self.shutdown()

        self.push_screen(StartupFailedScreen(event.summary, rows, event.detail, hint), chosen)

    def _quit_detail(self) -> str:
        """What quitting does now, for the quit question."""
        if self.model.startup is not None and self.model.startup is not StartupPhase.STARTING:
            return "The run has not started: the start-up stops and nothing is trained."
        if self.model.state.is_terminal:
            return "The run has ended. Your Config-pane edits (not applied, or waiting for R) will be lost."
        return "Training stops at the next iteration boundary and a checkpoint is saved first."

    def _restart_detail(self, ended: bool) -> str:
        """What a restart will do, true for a running run, one that has ended and one that never started."""
        if self.model.startup_failure is not None:
            return ("The run never started: the data is checked again and the run starts as the command "
                    "asked, with the config as it is now.")
        if not ended:
            return ("This run stops at the next iteration boundary and saves a checkpoint; a new run "
                    "starts from that checkpoint with the edited config.")
        checkpoint = self.bridge.last_checkpoint if self.bridge is not None else None
        if checkpoint is None:
            return "This run has ended without a checkpoint; a new run starts from scratch with the edited config."
        return f"This run has ended; a new run starts from its last checkpoint ({checkpoint}) with the edited config."

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False, name="restart")
    def _restart(self, config: Config) -> None:
        old, bridge = self.link, self.bridge
        # The old run's objects become garbage: the collector must reach them before the
        # engine's close and the new run's build (on a GPU, before it allocates).
        self.long_lived.release()
        if not old.state.is_terminal:
            old.send(Stop(save=True, reason="restart"))
        old.close(self.close_timeout)
        checkpoint = bridge.last_checkpoint if bridge else None
        assert self.engine_factory is not None
        new = self.engine_factory(config, checkpoint)
        self.call_from_thread(self._restarted, new, config, checkpoint)

    def _restarted(self, link: EngineLink, config: Config, checkpoint: str | None = None) -> None:
        self.config = config
        baseline = self.model.baseline
        self.model = CockpitState(run_name=config.run.name, classes=config.data.classes)
        self.model.set_baseline(baseline)
        self._dirty = {STATUS, LOSSES, MEMORY, CHECKLIST, PREVIEW, LABELS}
        self.config_editor.set_running(config)
        self._attach_link(link)
        self.flush_redraws()
        where = "from the last checkpoint" if checkpoint else "as the command asked (no checkpoint to start from)"
        self.notify(f"A new run is starting {where}.", title="Restarted", timeout=5)

    # -- report -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="report", exit_on_error=False, name="report")
    def _build_report(self) -> None:
        run_dir = self.link.run_dir
        try:
            from cockpit.report.build import build_report
        except ImportError:
            self.call_from_thread(
                self.notify, "The report builder (cockpit.report.build) is not available yet.",
                title="Report not available", severity="warning",
            )
            return
        if run_dir is None:
            self.call_from_thread(self.notify, "This run has no run folder yet.", title="No report", severity="warning")
            return
        try:
            paths = build_report(run_dir)
        except Exception as error:  # noqa: BLE001 - shown, not raised
            self.call_from_thread(self.notify, f"{type(error).__name__}: {error}", title="Report failed",
                                  severity="error", timeout=10)
            return
        where = getattr(paths, "html", paths)
        self.call_from_thread(self.notify, f"{where}", title="Report written", timeout=10)
