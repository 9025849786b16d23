"""The start-up behind the cockpit (cockpit/startup.py): the data check and the trainer's
construction in the background, in order, with the run refused when either fails."""

from __future__ import annotations

import threading

from cockpit.engine.commands import Stop, TogglePause
from cockpit.engine.events import (
    CheckState,
    FlagRaised,
    Progress,
    RunState,
    StartupFailed,
    StartupPhase,
    StartupStage,
)
from cockpit.startup import StartupLink


class BuiltLink:
    """What ``build`` returns: records what the start-up hands it."""

    def __init__(self, run_dir="runs/x") -> None:
        self.listeners, self.commands, self.started, self.closed = [], [], False, False
        self.run_dir = run_dir
        self.state = RunState.RUNNING

    def subscribe(self, listener) -> None:
        self.listeners.append(listener)

    def send(self, command) -> None:
        self.commands.append((command, self.started))

    def start(self) -> None:
        self.started = True

    def close(self, timeout=None) -> None:
        self.closed = True


def run_startup(link: StartupLink) -> list:
    events: list = []
    link.subscribe(events.append)
    link.start()
    link._thread.join(120)
    assert not link._thread.is_alive()
    return events


def test_the_data_is_checked_split_by_split_then_the_trainer_is_built_and_started(sample_config):
    config = sample_config()
    built = BuiltLink()
    calls = []

    def build(cfg, preflight):
        calls.append((cfg, preflight))
        return built

    link = StartupLink(config, build)
    link.send(TogglePause())  # pressed while the data is checked
    events = run_startup(link)

    phases = [e.phase for e in events if isinstance(e, StartupStage)]
    assert phases == [StartupPhase.CHECKING_DATA, StartupPhase.BUILDING_MODEL]
    assert isinstance(events[0], StartupStage)
    building = next(i for i, e in enumerate(events) if isinstance(e, StartupStage) and e.phase is StartupPhase.BUILDING_MODEL)
    flags = [(i, e) for i, e in enumerate(events) if isinstance(e, FlagRaised)]
    # The train split's rows arrive before the val split has been read.
    first_val = min(i for i, e in flags if e.evidence.startswith("[val]"))
    assert any(i < first_val and e.evidence.startswith("[train]") for i, e in flags)
    assert all(i < building for i, _ in flags)
    assert any(isinstance(e, Progress) for e in events)
    # The trainer gets the config, the report, the listeners and the commands, then starts.
    assert calls[0][0] is config and "verdicts" in calls[0][1]
    assert link.preflight is calls[0][1]
    assert built.listeners == link._listeners and built.commands == [(TogglePause(), False)] and built.started
    assert link.trainer is built and link.run_dir == "runs/x" and link.state is RunState.RUNNING and link.started
    assert link.failure is None


def test_pre_flight_errors_refuse_the_run_before_anything_is_built(sample_config, tmp_path):
    config = sample_config(f"data.train='{tmp_path / 'missing.json'}'")
    calls = []
    link = StartupLink(config, lambda cfg, report: calls.append(cfg))
    events = run_startup(link)

    failure = events[-1]
    assert isinstance(failure, StartupFailed) and failure.preflight
    assert "1 error" in failure.summary and "nothing was trained" in failure.summary
    assert "[train] Dataset opens" in failure.detail and "fix: fix data.train" in failure.detail
    flagged = [e for e in events if isinstance(e, FlagRaised) and e.status is CheckState.FLAGGED]
    assert {e.rule for e in flagged} == {"dataset_load"}
    assert calls == [] and link.trainer is None and link.run_dir is None
    assert link.state is RunState.FAILED and link.build_error is None
    assert "Dataset opens" in link.preflight_table


def test_a_trainer_that_cannot_be_built_is_a_startup_failure_with_its_reason(sample_config):
    def build(cfg, preflight):
        raise FileNotFoundError("--resume: no checkpoint in runs/old")

    link = StartupLink(sample_config(), build, check_data=False)
    events = run_startup(link)

    assert [type(e) for e in events] == [StartupStage, StartupFailed]
    assert events[-1].summary == "--resume: no checkpoint in runs/old" and not events[-1].preflight
    assert "FileNotFoundError" in events[-1].detail
    assert isinstance(link.build_error, FileNotFoundError) and link.state is RunState.FAILED
    assert not link.started


def test_without_the_check_the_trainer_is_built_at_once_with_no_report(sample_config):
    calls = []
    link = StartupLink(sample_config(), lambda cfg, report: calls.append(report) or BuiltLink())
    link._check_data = False
    events = run_startup(link)
    assert [e.phase for e in events] == [StartupPhase.BUILDING_MODEL]
    assert calls == [None]


def test_quitting_during_the_check_stops_it_and_builds_nothing(sample_config):
    calls = []
    link = StartupLink(sample_config(), lambda cfg, report: calls.append(cfg))
    events: list = []
    link.subscribe(events.append)
    link.send(Stop(save=True, reason="quit"))  # q confirmed before the check got anywhere
    link.start()
    link.close(timeout=120)
    assert calls == [] and link.trainer is None and link.failure is None
    assert not any(isinstance(e, (FlagRaised, StartupFailed)) for e in events)


def test_a_trainer_built_after_a_quit_is_closed_unstarted(sample_config):
    built = BuiltLink()
    entered, release = threading.Event(), threading.Event()

    def build(cfg, report):
        entered.set()
        release.wait(60)
        return built

    link = StartupLink(sample_config(), build, check_data=False)
    link.start()
    assert entered.wait(60)  # the trainer is being built...
    closer = threading.Thread(target=link.close, kwargs={"timeout": 60})
    closer.start()
    while not link.cancelled:  # ...when the cockpit quits
        closer.join(0.01)
    release.set()
    closer.join(60)
    assert not closer.is_alive()
    assert not built.started and built.closed and not link.started  # the CLI says 130: nothing ran


def test_listeners_subscribed_after_the_hand_over_go_to_the_trainer(sample_config):
    built = BuiltLink()
    link = StartupLink(sample_config(), lambda cfg, report: built, check_data=False)
    run_startup(link)
    late = []
    link.subscribe(late.append)
    assert built.listeners[-1] == late.append
    link.send(TogglePause())
    assert built.commands == [(TogglePause(), True)]


def test_an_unexpected_error_in_the_start_up_is_a_startup_failure_not_a_silent_thread(sample_config, monkeypatch):
    import cockpit.diagnostics.preflight as preflight

    def broken(*args, **kwargs):
        raise KeyError("a bug in a dataset module")

    monkeypatch.setattr(preflight, "run_preflight", broken)
    calls = []
    link = StartupLink(sample_config(), lambda cfg, report: calls.append(cfg))
    events = run_startup(link)
    assert isinstance(events[-1], StartupFailed)
    assert "KeyError" in events[-1].summary and "a bug in a dataset module" in events[-1].detail
    assert calls == [] and link.state is RunState.FAILED and not link.started
