"""The cockpit: a keyboard-driven Textual app over one training engine.

The app is written against :class:`~cockpit.engine.link.EngineLink` only: events come in
through an :class:`~cockpit.ui.bridge.EngineBridge` (thread-safe, coalescing), commands go
out with ``link.send`` (which never blocks). Events are folded into a pure view-model
(:class:`~cockpit.ui.state.CockpitState`); panes are redrawn from it inside one
``batch_update``, at most ``1 / redraw_interval`` times a second and further apart when a
frame costs more (:mod:`cockpit.ui.frame_budget`), the status bar alone in between;
state changes are drawn at once, in the panes they change.

Build it with :func:`create_app` (the CLI and the tests both do).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from cockpit.config import Config
from cockpit.engine.commands import (
    ApplyPatch,
    Command,
    EvaluateNow,
    RequestPreview,
    SaveCheckpoint,
    ScaleLR,
    SetLR,
    TogglePause,
    Stop,
)
from cockpit.engine.events import (
    CheckpointSaved,
    CommandAck,
    ConfigChanged,
    Event,
    FaultCause,
    LRChanged,
    LRSource,
    Outcome,
    Progress,
    RunError,
    RunFinished,
    RunStarted,
    RunState,
    RunWarning,
    StartupFailed,
    StepMetrics,
    WarningCategory,
)
from cockpit.engine.link import EngineLink
from cockpit.ui.baseline import Baseline
from cockpit.ui.baseline_control import BaselineMixin
from cockpit.ui.bridge import EngineBridge, EventsPending
from cockpit.ui.frame_budget import STATUS_INTERVAL, FrameBudget
from cockpit.ui.keymap import RUN_ENDED, KeyMap
from cockpit.ui.long_lived import LongLivedObjects
from cockpit.ui.pane_navigation import PaneNavigation
from cockpit.ui.run_actions import RunActions
from cockpit.ui.modals import ConfirmScreen, ErrorScreen, NaNScreen, SetLRScreen
from cockpit.ui.state import CHECKLIST, LABELS, LOSSES, MEMORY, PREVIEW, STATUS, CockpitState
from cockpit.ui.widgets.checklist_panel import ChecklistPanel
from cockpit.ui.widgets.config_editor import ConfigEditor
from cockpit.ui.widgets.footer import CockpitFooter
from cockpit.ui.widgets.labels_panel import LabelsPanel
from cockpit.ui.widgets.loss_plot import LossPlot
from cockpit.ui.widgets.memory_panel import MemoryPanel
from cockpit.ui.widgets.pane_tabs import PaneTabs
from cockpit.ui.widgets.preview_panel import PreviewPanel
from cockpit.ui.widgets.status_bar import StatusBar, format_lr

EngineFactory = Callable[[Config, "str | None"], EngineLink]
"""``engine_factory(config, resume_from_checkpoint) -> EngineLink`` (not started)."""

_ROUTINE = (StepMetrics, Progress, CheckpointSaved)
"""Events that stream in (a record per step, progress ticks, the epoch-end checkpoint):
drawn at the frame budget's pace. Any other event is drawn at once, but only the panes it
changed (and the status bar): an epoch-end checkpoint that forced a whole frame doubled
the frames drawn on the sample (one every ~3.4 s besides the budget's)."""

PANES: tuple[tuple[str, str], ...] = (
    ("losses", "Losses"),
    ("memory", "Memory"),
    ("checklist", "Checklist"),
    ("preview", "Preview"),
    ("config", "Config"),
    ("labels", "Labels"),
)


class CockpitApp(KeyMap, BaselineMixin, PaneNavigation, RunActions, App[None]):
    """Status bar over six panes (losses, memory, checklist, preview, config, labels) and a footer."""

    CSS_PATH = "cockpit.tcss"
    PANES = PANES
    TITLE = "cockpit"
    # Below 160 columns the panes are tabbed (one visible, 1-6 / tab to switch); from 160
    # they share a grid. The class lands on the screen, the layout lives in cockpit.tcss.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (160, "-wide")]

    # q and ? first: the footer pins them left so a narrow terminal never hides them.
    BINDINGS = [
        Binding("q", "quit_cockpit", "Quit", tooltip="Save a checkpoint, stop the engine and exit (asks first when something would be lost)", id="quit"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="Show every key", id="help"),
        Binding("p,space", "toggle_pause", "Pause/Resume", tooltip="Pause or resume training", id="pause"),
        Binding("plus", "lr_up", "LR×2", key_display="+", tooltip="Multiply the LR by the factor", id="lr_up"),
        Binding("minus", "lr_down", "LR÷2", key_display="-", tooltip="Divide the LR by the factor", id="lr_down"),
        Binding("L", "set_lr", "Set LR", key_display="L", tooltip="Set an exact learning rate", id="set_lr"),
        Binding("e", "evaluate", "Eval", tooltip="Run a COCO evaluation now", id="evaluate"),
        Binding("s", "save", "Save", tooltip="Save a checkpoint now", id="save"),
        Binding("r", "report", "Report", tooltip="Export the run report (HTML)", id="report"),
        Binding("n", "next_preview", "Next img", tooltip="Preview the next val image", id="next_preview"),
        Binding("b", "prev_preview", "Prev img", tooltip="Preview the previous val image", id="prev_preview"),
        Binding("tab", "next_pane", "Next pane", show=False, priority=True, id="next_pane"),
        Binding("shift+tab", "previous_pane", "Prev pane", show=False, priority=True, id="previous_pane"),
        *(
            Binding(str(i), f"focus_pane({i})", f"{title}", show=False, tooltip=f"Jump to the {title} pane", id=f"pane_{i}")
            for i, (_, title) in enumerate(PANES, start=1)
        ),
        Binding("f", "maximize_pane", "Max", tooltip="Maximise the focused pane (again to restore)", id="maximize"),
        Binding("N", "nan_recovery", "Recover", key_display="N",
                tooltip="Choose a recovery for the non-finite loss: rewind and skip the batch, LR x0.1, or clip",
                id="nan_recovery"),
        Binding("R", "restart_run", "Restart", key_display="R",
                tooltip="Restart with the edited config (after ctrl+s in the Config pane says 'needs restart')",
                id="restart"),
        # Not priority: while the Config pane is editing, its own ctrl+q (shown there) answers.
        Binding("ctrl+q", "quit_cockpit", "Quit", show=False),
        # Textual's ctrl+c only says how to quit; here it quits like q.
        Binding("ctrl+c", "quit_cockpit", "Quit", show=False),
        Binding("f1", "help", "Help", show=False),
    ]

    # Actions that only make sense while the main screen is showing.
    _MAIN_ACTIONS = frozenset(
        {
            "toggle_pause", "lr_up", "lr_down", "set_lr", "evaluate", "save", "report",
            "next_preview", "prev_preview", "next_pane", "previous_pane", "focus_pane",
            "maximize_pane", "quit_cockpit", "help", "restart_run", "nan_recovery",
        }
    )
    # Actions on printable keys: while the Config pane is editing, those keys type instead.
    _TYPED_ACTIONS = _MAIN_ACTIONS - {"next_pane", "previous_pane"}
    # Actions that send a command to the engine: gone from the footer once the run ended.
    _ENGINE_ACTIONS = frozenset(
        {"toggle_pause", "lr_up", "lr_down", "set_lr", "evaluate", "save", "next_preview", "prev_preview",
         "nan_recovery"}
    )

    def __init__(
        self,
        link: EngineLink,
        config: Config,
        config_path: str | Path | None = None,
        engine_factory: EngineFactory | None = None,
        *,
        lr_factor: float = 2.0,
        redraw_interval: float = 0.2,
        close_timeout: float | None = 120.0,
        baseline: Baseline | None = None,
    ) -> None:
        super().__init__()
        self.link = link
        self.config = config
        self.config_path = Path(config_path) if config_path else None
        self.engine_factory = engine_factory
        self.lr_factor = lr_factor
        self.redraw_interval = redraw_interval
        self.close_timeout = close_timeout
        self.model = CockpitState(run_name=config.run.name, classes=config.data.classes)
        self.model.set_baseline(baseline)
        self.bridge: EngineBridge | None = None
        self._dirty: set[str] = set()
        self._flush_timer = None
        self._last_flush = 0.0
        self._last_status = 0.0
        self.frame_budget = FrameBudget(redraw_interval)
        self.status_interval = STATUS_INTERVAL
        """The status bar alone is redrawn this often while the panes wait for their frame."""
        self._quitting = False
        self._active_pane = 0
        self._ended = False
        self.long_lived = LongLivedObjects()
        """Frozen out of full collections once the run steps; released before the run closes."""

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # The panes live on the default screen; they are kept here because app.query()
        # only searches the active screen, which is a modal while one is open.
        self.status_bar = StatusBar(id="status")
        self.tabs = PaneTabs([title for _, title in PANES], id="tabs")
        self.loss_plot = LossPlot(self.model.losses, id="losses", classes="pane")
        self.preview_panel = PreviewPanel(id="preview", classes="pane")
        self.memory_panel = MemoryPanel(id="memory", classes="pane")
        self.checklist_panel = ChecklistPanel(id="checklist", classes="pane")
        self.config_editor = ConfigEditor(self.config, id="config", classes="pane")
        self.labels_panel = LabelsPanel(id="labels", classes="pane")
        if self.config_path is not None:
            self.config_editor.border_subtitle = self.config_path.name
        self.panes: dict[str, Widget] = {
            "losses": self.loss_plot,
            "memory": self.memory_panel,
            "checklist": self.checklist_panel,
            "preview": self.preview_panel,
            "config": self.config_editor,
            "labels": self.labels_panel,
        }
        yield self.status_bar
        yield self.tabs
        with Container(id="panes"):
            # DOM order places the wide grid: losses, labels, preview on top; the rest below.
            yield self.loss_plot
            yield self.labels_panel
            yield self.preview_panel
            yield self.checklist_panel
            yield self.memory_panel
            yield self.config_editor
        yield CockpitFooter(compact=True)

    def on_mount(self) -> None:
        self.preview_panel.show(None, self.model.class_name)
        self._refresh_panes({STATUS, LOSSES, MEMORY, CHECKLIST, LABELS})
        self._set_active_pane(0)
        self.focus_pane_widget(0)
        self._attach_link(self.link)

    def _attach_link(self, link: EngineLink) -> None:
        """Listen to ``link`` (replacing any previous one) and start it."""
        if self.bridge is not None:
            self.bridge.detach()
        self.link = link
        self.long_lived.arm()
        # Step records are only shown at the next redraw: ringing for them more often than
        # that would wake the loop (and take the GIL from training) for nothing.
        self.bridge = EngineBridge(self, link, min_interval=self.redraw_interval)
        # Started once this frame is on the screen: a start-up imports torch (seconds, much
        # of it holding the GIL) and the user should see the cockpit first.
        self.call_after_refresh(link.start)

    # -- events in ----------------------------------------------------------------------
    @on(EventsPending)
    def _events_pending(self, message: EventsPending) -> None:
        if message.bridge is not self.bridge:
            message.bridge.drain()  # a replaced engine's late events
            return
        events = message.bridge.drain()
        warnings: dict[WarningCategory, list[RunWarning]] = {}
        urgent: set[str] = set()
        for event in events:
            routine = isinstance(event, _ROUTINE)
            if not routine:
                # Step records and progress wait for the frame budget; anything else (a
                # pause, an error, an LR change, a flag) is what the user is waiting to
                # see: drawn now, with the status bar.
                urgent.add(STATUS)
            try:
                dirty = self.model.apply(event)
                self._dirty |= dirty
                if not routine:
                    urgent |= dirty
                if isinstance(event, RunWarning):
                    warnings.setdefault(event.category, []).append(event)
                else:
                    self._react(event)
            except Exception as error:  # noqa: BLE001 - one odd event must not take the cockpit down
                self.log.error(f"cannot show {type(event).__name__}: {error!r}")
        for category, batch in warnings.items():
            # One toast per kind of warning per batch: a burst of skipped samples is one line.
            last = batch[-1]
            more = f" (+{len(batch) - 1} more like it)" if len(batch) > 1 else ""
            severity = "error" if category is WarningCategory.OOM_RETRY else "warning"
            self.notify(f"{last.message}{more}", title=f"Warning (it {last.iter})", severity=severity, timeout=6)
        if self.model.state.is_terminal != self._ended:
            self._ended = self.model.state.is_terminal
            self.refresh_bindings()  # the engine keys leave the footer once the run ended
        self._schedule_flush(urgent)

    def _react(self, event: Event) -> None:
        """What an event does beyond the view-model: notifications and modals."""
        if isinstance(event, (RunStarted, ConfigChanged)):
            self._follow_engine_config(event.config)
            if isinstance(event, RunStarted):
                self.refresh_bindings()  # the run folder exists now: r (report) joins the footer
        elif isinstance(event, RunError):
            if event.fatal:
                self._show_error("The run failed", event.summary, event.traceback,
                                 "The cockpit stays open: inspect the panes; edit the config (5, enter), "
                                 "apply it (ctrl+s), then R restarts.")
            elif event.cause is FaultCause.CHECKPOINT:
                # Before the NaN branch: a NaN flag can still stand when the disk fills up.
                self._checkpoint_not_written(event)
            elif event.cause is FaultCause.NONFINITE or self.model.checklist.get("nonfinite_loss").flagged:
                self._offer_recovery(event)
            else:
                self._show_error("The run paused on an error", event.summary, event.traceback,
                                 "The engine paused itself: p resumes; or edit the config (5, enter), "
                                 "apply it (ctrl+s), and R restarts.")
        elif isinstance(event, StepMetrics):
            # The run is under way: what exists now lives as long as it does.
            self.long_lived.freeze()
        elif isinstance(event, StartupFailed):
            self._startup_failed(event)
        elif isinstance(event, RunFinished):
            if event.outcome is Outcome.FAILED:
                self.notify(event.reason or "the run failed", title="Run failed", severity="error", timeout=10)
            else:
                words = event.outcome.value
                self.notify(f"Run {words} at iteration {event.iter}. q quits.", title=f"Run {words}", timeout=8)
        elif isinstance(event, CheckpointSaved):
            # Routine: the status bar says "saved it N"; a toast would cover the panes every epoch.
            self.log.info(f"checkpoint saved at iteration {event.iter}: {event.path}")
        elif isinstance(event, CommandAck) and not event.ok:
            self.notify(event.message or "refused", title=f"{event.command}: not applied", severity="warning")
        elif isinstance(event, LRChanged) and LRSource(event.source) is not LRSource.SCHEDULE:
            source = LRSource(event.source).value
            self.notify(f"LR {format_lr(event.previous)} → {format_lr(event.lr)}", title=f"LR changed ({source})", timeout=3)

    def _schedule_flush(self, urgent: set[str] = frozenset()) -> None:
        if not self._dirty:
            return
        if self.redraw_interval <= 0:
            self.flush_redraws()
            return
        now_panes = urgent & self._dirty
        if now_panes and self.loss_plot.is_attached:
            # What the user waits to see, now; the chart's new steps keep their frame's pace
            # unless the urgent news is on the chart itself (an evaluation, a start-up stage).
            self._dirty -= now_panes
            if STATUS in now_panes:
                self._last_status = time.monotonic()
            self._refresh_panes(now_panes)
            if not self._dirty:
                return
        # Throttle: at most one redraw per frame interval however fast steps arrive. When
        # one is due, draw now: a timer would wake the loop a second time for the same batch.
        now = time.monotonic()
        delay = self._last_flush + self.frame_budget.interval - now
        if delay <= 0:
            self.flush_redraws()
            return
        # The one line that says the run is moving, between two frames of the panes. The
        # bridge rings a second apart by its own clock; a doorbell that waited less in the
        # loop than the last one is handled a little under a second after it, hence the slack.
        if (STATUS in self._dirty and now - self._last_status >= 0.8 * self.status_interval
                and self.status_bar.is_attached):
            self._last_status = now
            self.status_bar.show_state(self.model)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(max(0.005, delay), self.flush_redraws)

    def flush_redraws(self) -> None:
        """Redraw every pane whose data changed since the last redraw."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if not self.loss_plot.is_attached:
            return  # shutting down: nothing left to draw into
        self._last_flush = self._last_status = time.monotonic()
        if self.redraw_interval > 0:
            interval = self.frame_budget.frame_drawn()
            if self.bridge is not None:
                # Step records need not wake the loop more often than they can be drawn:
                # the status bar's pace, or the panes' when that is shorter.
                self.bridge.min_interval = min(interval, self.status_interval)
        dirty, self._dirty = self._dirty, set()
        self._refresh_panes(dirty)

    def _refresh_panes(self, dirty: Iterable[str]) -> None:
        dirty = set(dirty)
        with self.batch_update():
            if STATUS in dirty or CHECKLIST in dirty:
                self.status_bar.show_state(self.model)
            if LOSSES in dirty:
                self.loss_plot.loss_kinds = self.model.labels.loss_kinds()
                self.loss_plot.val_losses = list(self.model.val_losses)
                self.loss_plot.waiting_text = self.model.waiting_for
                self.loss_plot.show(self.model.losses, self.model.evals, self.model.baseline)
            if LABELS in dirty:
                self.labels_panel.show_state(self.model.labels)
            if MEMORY in dirty:
                self.memory_panel.show_state(self.model)
            if CHECKLIST in dirty:
                self.checklist_panel.show_state(self.model)
            elif STATUS in dirty:
                self.checklist_panel.show_iteration(self.model.iter)
            if PREVIEW in dirty:
                self.preview_panel.show(self.model.preview, self.model.class_name, self.model.overlay)

    # -- commands out -------------------------------------------------------------------
    def send(self, command: Command) -> bool:
        """Send ``command`` unless the run is over (then say so)."""
        if self.model.state.is_terminal:
            self.notify(RUN_ENDED, title=f"{command.name}: not sent", severity="warning")
            return False
        self.link.send(command)
        return True

    def action_toggle_pause(self) -> None:
        # The engine resolves the toggle against its real state when it takes the command:
        # the screen's state lags, so quick presses guessed from it would all say "pause".
        self.send(TogglePause())

    def action_lr_up(self) -> None:
        self.send(ScaleLR(self.lr_factor))

    def action_lr_down(self) -> None:
        self.send(ScaleLR(1.0 / self.lr_factor))

    def action_set_lr(self) -> None:
        def chosen(value: float | None) -> None:
            if value is not None:
                self.send(SetLR(value))

        self.push_screen(SetLRScreen(self.model.lr), chosen)

    def action_evaluate(self) -> None:
        if self.send(EvaluateNow()):
            self.notify("Evaluation queued (runs at the next iteration boundary).", timeout=3)

    def action_save(self) -> None:
        self.send(SaveCheckpoint())

    def _preview_index(self) -> int:
        return self.model.preview.index if self.model.preview is not None else 0

    def action_next_preview(self) -> None:
        self.send(RequestPreview(self._preview_index() + 1))

    def action_prev_preview(self) -> None:
        # The engine takes the index modulo the val set, so -1 wraps to the last image.
        self.send(RequestPreview(self._preview_index() - 1))

    # -- checklist / NaN recovery -------------------------------------------------------
    @on(ChecklistPanel.RecoveryChosen)
    def _recovery_chosen(self, message: ChecklistPanel.RecoveryChosen) -> None:
        self.send(message.command)

    def _offer_recovery(self, error: RunError) -> None:
        row = self.model.checklist.get("nonfinite_loss")
        evidence = row.evidence if row and row.flagged else ""
        fix = row.fix if row and row.flagged else ""
        if isinstance(self.screen, NaNScreen):
            return

        def chosen(command: Command | None) -> None:
            if command is not None:
                self.send(command)
            else:
                self.notify("Still paused. p resumes; N offers the recoveries again.", timeout=5)

        self.push_screen(NaNScreen(error.summary, evidence, fix), chosen)

    def action_nan_recovery(self) -> None:
        error = self.model.last_error or RunError(summary="The loss became non-finite.", traceback="", fatal=False)
        self._offer_recovery(error)

    def _checkpoint_not_written(self, event: RunError) -> None:
        """Editing the config cannot help here, and the user's worry is the weights."""
        if self.model.state is RunState.STOPPING:
            # The final save (or the one on a stop): the run ends without it.
            self._show_error("The run ends without its last checkpoint", event.summary, event.traceback,
                             "Any earlier checkpoint is untouched. Make room where the run folder lives (or fix "
                             "what the line above names); cockpit run --resume RUN_DIR continues from it.")
            return
        self._show_error("The run paused: the checkpoint was not written", event.summary, event.traceback,
                         "Any earlier checkpoint is untouched. Make room where the run folder lives (or fix "
                         "what the line above names), then s saves a checkpoint now and p resumes.")

    def _show_error(self, title: str, summary: str, traceback: str, hint: str = "") -> None:
        self.push_screen(ErrorScreen(title, summary, traceback, hint))

    @on(PreviewPanel.OverlayChanged)
    def _overlay_changed(self, message: PreviewPanel.OverlayChanged) -> None:
        # The overlay is computed by the engine from the model as it is now: ask for a fresh one.
        if message.mode != "gt":
            self.send(RequestPreview(self._preview_index(), predict=True))

    # -- config -------------------------------------------------------------------------
    @on(ConfigEditor.PatchRequested)
    def _patch(self, message: ConfigEditor.PatchRequested) -> None:
        if self.send(ApplyPatch(dict(message.changes))):
            self.config = self.config.copy_with(message.changes)

    @on(ConfigEditor.RestartRequested)
    def _restart_requested(self, message: ConfigEditor.RestartRequested) -> None:
        if self.engine_factory is None:
            self.notify("This cockpit was started without an engine factory; restart it from the shell.",
                        title="Restart not available", severity="warning")
            return
        config = message.config
        ended = self.model.state.is_terminal

        def confirmed(yes: bool | None) -> None:
            if yes:
                if not ended:
                    self.notify("Stopping this run (saving a checkpoint)…", title="Restarting", timeout=4)
                self._restart(config)

        self.push_screen(ConfirmScreen("Restart with the edited config?", self._restart_detail(ended)), confirmed)

    # -- report -------------------------------------------------------------------------
    def action_report(self) -> None:
        self.notify("Building the report…", timeout=2)
        self._build_report()

    # -- quitting -----------------------------------------------------------------------
    def action_quit_cockpit(self) -> None:
        if self._quitting:
            return
        ended_with_nothing_pending = self.model.state.is_terminal and not self.config_editor.unapplied_edits
        if self.model.startup_failure is not None or ended_with_nothing_pending:
            # Nothing ran, or the run has ended and its folder holds everything: nothing to
            # lose, no question asked (the "run finished" toast says q quits).
            self.shutdown()
            return
        detail = self._quit_detail()

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.shutdown()

        self.push_screen(ConfirmScreen("Quit the cockpit?", detail, yes="Quit (y)", no="Stay (n)"), confirmed)

    async def action_quit(self) -> None:
        self.action_quit_cockpit()

    def shutdown(self) -> None:
        """Stop the engine (saving a checkpoint), wait for it off the UI thread, then exit."""
        self._quitting = True
        if not self.model.state.is_terminal:
            self.link.send(Stop(save=True, reason="quit"))
            self.notify("Saving a checkpoint and stopping the engine…", title="Quitting", timeout=30)
        self._close_and_exit()

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False, name="close")
    def _close_and_exit(self) -> None:
        try:
            self.long_lived.release()  # before the engine's close collects what it drops
            self.link.close(self.close_timeout)
        finally:
            self.call_from_thread(self.exit)

    def on_unmount(self) -> None:
        # Whatever runs in this process after the app (the exit summary, the next test)
        # must not inherit objects the collector cannot reach.
        self.long_lived.release()

    # -- worker errors ------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is not WorkerState.ERROR or worker.group == "preview":
            return
        import traceback as tb

        error = worker.error
        text = "".join(tb.format_exception(error)) if isinstance(error, BaseException) else str(error)
        if worker.name == "close":
            self.exit()
            return
        self._show_error(f"{worker.name or 'background task'} failed", f"{type(error).__name__}: {error}", text)

def create_app(
    link: EngineLink,
    config: Config,
    config_path: str | Path | None = None,
    engine_factory: EngineFactory | None = None,
    **options,
) -> CockpitApp:
    """The cockpit over ``link`` (not yet started: the app subscribes, then starts it).

    ``engine_factory(config, resume_from_checkpoint)`` builds a new, unstarted link; with it,
    the Config pane can restart the run with an edited config. ``options``: ``lr_factor``
    (``+``/``-``, default 2), ``redraw_interval`` (the shortest time between redraws, default
    0.2 s; the frame budget may space them further; 0 redraws on every batch of events, as
    the tests do), ``close_timeout``, ``baseline`` (a
    :class:`~cockpit.ui.baseline.Baseline` drawn faintly behind the loss curves).
    """
    return CockpitApp(link, config, config_path, engine_factory, **options)
