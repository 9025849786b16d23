"""Starting a run behind the cockpit, so the cockpit draws its first frame at once.

``cockpit run`` used to check the data and build the trainer before the app started: the
user looked at an empty terminal for longer than ``import torch`` takes. A
:class:`StartupLink` is the :class:`~cockpit.engine.link.EngineLink` the app is given
instead. When the app starts it (after its first frame), one short-lived thread

1. runs the pre-flight check, publishing its :class:`~cockpit.engine.events.Progress`
   and each split's verdicts as checklist flags as soon as that split is checked;
2. imports torch and builds the trainer (``build``: :func:`cockpit.assembly.make_trainer`
   for ``cockpit run``), subscribes the app's listeners to it, forwards the commands sent
   so far, and starts it -- from then on the link is a thin wrapper around the trainer.

Pre-flight errors, or a trainer that cannot be built (a refused resume...), end the
start-up with a :class:`~cockpit.engine.events.StartupFailed`: nothing is trained and
no run folder is made; the cockpit stays open to show why.

The thread ends once the trainer is started: libgomp keeps an OpenMP thread team for
every thread that ran a torch parallel region (the pre-flight's sample decoding, the
model's weight init), and a team that outlived its use would compete with the trainer's
on a 2-core machine (BENCHMARKS.md). Nothing here imports torch at module level.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from cockpit.config import Config
from cockpit.engine.commands import Command, Stop
from cockpit.engine.events import Event, Progress, RunState, Severity, StartupFailed, StartupPhase, StartupStage
from cockpit.engine.link import EngineLink, Listener

TrainerBuilder = Callable[[Config, "dict | None"], EngineLink]
"""``build(config, preflight_report_dict_or_None) -> EngineLink`` (built, not started)."""


class StartupCancelled(BaseException):
    """The cockpit quit while the data was being checked. A BaseException, because the
    pre-flight turns a dataset's Exceptions into verdicts: this one must get through."""


class StartupLink:
    """An :class:`EngineLink` that checks the data and builds the trainer in the background,
    then hands over to it (see the module docstring).

    ``check_data`` False skips the pre-flight (``--no-check``) and passes ``preflight``
    (an earlier report, or None) to ``build``. ``on_built(link)`` runs in the start-up
    thread once the trainer exists (the CLI records the process in the run folder).
    """

    def __init__(
        self,
        config: Config,
        build: TrainerBuilder,
        *,
        check_data: bool = True,
        preflight: dict | None = None,
        on_built: Callable[[EngineLink], None] | None = None,
    ) -> None:
        self.config = config
        self._build = build
        self._check_data = check_data
        self._on_built = on_built
        self.preflight: dict | None = preflight
        """The pre-flight report (``preflight.json``'s dict) once the check ran."""
        self.preflight_table = ""
        """The pre-flight's table as ``cockpit check`` prints it (for the terminal after the app)."""
        self.failure: StartupFailed | None = None
        self.build_error: BaseException | None = None
        """What building the trainer raised (a refused resume...), when that ended the start-up."""
        self.cancelled = False
        self.started = False
        """True once the trainer was started (a quit during the start-up leaves it False)."""
        self._listeners: list[Listener] = []
        self._pending: list[Command] = []
        self._trainer: EngineLink | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._verdicts: list[dict[str, Any]] = []

    # -- EngineLink ------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            if self._trainer is None:
                self._listeners.append(listener)
                return
            trainer = self._trainer
        trainer.subscribe(listener)

    def send(self, command: Command) -> None:
        with self._lock:
            if self._trainer is None:
                # Kept for the trainer: a pause pressed while the data is checked pauses the run
                # at its first iteration. A stop during the check also ends the check.
                self._pending.append(command)
                if isinstance(command, Stop):
                    self.cancelled = True
                return
            trainer = self._trainer
        trainer.send(command)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._start_up, name="cockpit-startup", daemon=True)
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Stop: a start-up under way ends at its next step (the check stops at its next
        progress tick; a trainer being built is closed unstarted); a started trainer stops
        at the next iteration boundary, saving a checkpoint."""
        with self._lock:
            self.cancelled = self._trainer is None or self.cancelled
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            trainer = self._trainer
        if trainer is not None:
            trainer.close(timeout)

    @property
    def state(self) -> RunState:
        if self._trainer is not None:
            return self._trainer.state
        return RunState.FAILED if self.failure is not None else RunState.IDLE

    @property
    def run_dir(self) -> Path | None:
        return self._trainer.run_dir if self._trainer is not None else None

    @property
    def trainer(self) -> EngineLink | None:
        """The trainer, once built."""
        return self._trainer

    # -- the start-up thread ----------------------------------------------------------------
    def _publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a failing listener must not stop the start-up
                pass

    def _start_up(self) -> None:
        try:
            if self._check_data:
                self._publish(StartupStage(StartupPhase.CHECKING_DATA))
                if not self._run_preflight():
                    return
            self._publish(StartupStage(StartupPhase.BUILDING_MODEL))
            self._hand_over()
        except StartupCancelled:
            return
        except Exception as error:  # noqa: BLE001 - a bug in a dataset module...: said, never a silent STARTING
            self._fail(StartupFailed(summary=f"the run could not start: {type(error).__name__}: {error}",
                                     detail=traceback.format_exc()))
            with self._lock:
                trainer = self._trainer
            if trainer is not None and not self.started:
                trainer.close()

    def _progress(self, event: Progress) -> None:
        if self.cancelled:
            raise StartupCancelled()
        self._publish(event)

    def _run_preflight(self) -> bool:
        """Check the data; False (after a :class:`StartupFailed`) when the run must not start."""
        from cockpit.data.errors import DatasetError
        from cockpit.diagnostics.preflight import format_table, run_preflight, verdict_dict

        try:
            report = run_preflight(self.config, progress=self._progress, on_split=self._split_checked)
        except DatasetError as error:
            self._fail(StartupFailed(summary=str(error)))
            return False
        self.preflight = report.to_dict()
        self.preflight_table = format_table(report)
        if self.cancelled:
            raise StartupCancelled()
        if not report.has_errors:
            return True
        errors = [(split, v) for split, v in report.flagged() if v.flag.severity is Severity.ERROR]
        lines = []
        for split, verdict in errors:
            data = verdict_dict(verdict, split)
            lines.append(f"[{split}] {data.get('title', data['rule'])}: {data.get('evidence', '')}")
            if data.get("fix"):
                lines.append(f"    fix: {data['fix']}")
        count = len(errors)
        self._fail(StartupFailed(
            summary=f"the pre-flight check found {count} error{'s' if count != 1 else ''} in the data: nothing was trained",
            detail="\n".join(lines),
            preflight=True,
        ))
        return False

    def _split_checked(self, scan: Any) -> None:
        from cockpit.diagnostics.preflight import verdict_dict
        from cockpit.engine.preflight_flags import preflight_flags

        if self.cancelled:
            raise StartupCancelled()
        # Every split so far: the checklist keeps one row per rule, flagged in any split wins.
        self._verdicts += [verdict_dict(v, scan.split) for v in scan.verdicts]
        for event in preflight_flags(self._verdicts):
            self._publish(event)

    def _hand_over(self) -> None:
        # torch's import is most of the wait: after it, a quit still leaves no run folder.
        import cockpit.assembly  # noqa: F401

        if self.cancelled:
            return
        try:
            trainer = self._build(self.config, self.preflight)
        except Exception as error:  # noqa: BLE001 - ResumeError, CheckpointError, OSError...: shown, not raised
            self.build_error = error
            self._fail(StartupFailed(summary=str(error) or type(error).__name__, detail=traceback.format_exc()))
            return
        with self._lock:
            for listener in self._listeners:
                trainer.subscribe(listener)
            self._trainer = trainer
            pending, self._pending = self._pending, []
            cancelled = self.cancelled
        if cancelled:
            return  # close() closes the unstarted trainer: its folder is released, nothing trained
        if self._on_built is not None:
            self._on_built(trainer)  # after the subscriptions: what it reports reaches the cockpit
        for command in pending:
            trainer.send(command)
        self.started = True
        trainer.start()

    def _fail(self, event: StartupFailed) -> None:
        self.failure = event
        self._publish(event)
