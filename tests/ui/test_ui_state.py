"""The view-model: decimation keeps spikes and bounds cost; events fold into what panes show."""

from __future__ import annotations

import math

from cockpit.diagnostics.flags import CheckState
from cockpit.engine.events import FlagRaised, RunState, RunWarning, Severity, StateChanged
from cockpit.durations import format_duration
from cockpit.ui.decimation import DecimatedSeries
from cockpit.ui.loss_history import SERIES, LossHistory
from cockpit.ui.state import CockpitState, find_metric
from fake_engine import script, step_event


def test_decimated_series_stays_bounded_and_keeps_a_spike():
    series = DecimatedSeries(capacity=64)
    for i in range(100_000):
        series.append(i, 100.0 if i == 77_777 else 1.0)
    assert len(series) <= 64
    xs, ys = _points(series.buckets(40), envelope=True)
    assert max(ys) == 100.0
    assert min(ys) == 1.0
    assert len(series.buckets(40)) <= 40


def _points(buckets, envelope):
    from cockpit.ui.decimation import bucket_points

    return bucket_points(buckets, envelope)


def test_view_width_bounds_points_however_long_the_run():
    history = LossHistory(capacity=128)
    for i in range(20_000):
        history.add(i, {"loss_classifier": 1.0, "loss_box_reg": 0.5, "loss_objectness": 0.1, "loss_rpn_box_reg": 0.1}, 1.7)
    view = history.view(50)
    assert set(view) == set(SERIES)
    for xs, ys in view.values():
        assert len(xs) <= 100  # at most two points (min, max) per column
    windowed = history.view(50, window=100)
    assert all(min(xs) > 20_000 - 1 - 100 for xs, _ in windowed.values())


def test_ema_smoothing_and_nonfinite_steps_are_skipped():
    history = LossHistory()
    history.add(1, {}, 1.0)
    history.add(2, {}, float("nan"))
    history.add(3, {}, 0.0)
    raw = history.view(10, smoothing=0.0, names=["loss"])["loss"]
    smooth = history.view(10, smoothing=0.9, names=["loss"])["loss"]
    assert raw[1][-1] == 0.0
    assert math.isclose(smooth[1][-1], 0.9)
    assert history.nonfinite_iters == [2]


def test_script_folds_into_state():
    state = CockpitState(classes=["a"])
    changed = state.apply_all(script())
    assert {"status", "losses", "memory", "checklist", "preview"} <= changed
    assert state.state is RunState.RUNNING
    assert state.iter == 240 and state.total_iters == 400
    # it/s and ETA come from event times: 2 iterations every 0.5 s.
    assert state.its == 4.0
    assert state.eta_seconds == (400 - 240) / 4.0
    assert state.evals == [(100, 0.42), (200, 0.61)]
    assert [e.iter for e in state.oom_events] == [120]
    assert state.checklist.get("cuda_oom").flagged
    assert state.checklist.get("nonfinite_loss").state is CheckState.OK
    assert state.checklist.get("label_zero").state is CheckState.NOT_CHECKED
    assert [row.rule for row in state.flagged_rows] == ["cuda_oom"]
    assert state.memory["total_mb"] == 8192.0
    assert state.classes == ["circle", "square", "triangle"]


def test_pause_restarts_the_rate_reference():
    state = CockpitState()
    state.apply(step_event(2, t=10.0))
    state.apply(step_event(4, t=11.0))
    assert state.its == 2.0
    state.apply(StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING))
    state.apply(step_event(6, t=1000.0))  # after a long pause: no rate from the gap
    assert state.its == 2.0


def test_unknown_rule_and_oom_warning():
    state = CockpitState()
    state.apply(FlagRaised(rule="brand_new", title="Something new", status="FLAGGED", severity=Severity.ERROR))
    assert state.checklist.get("brand_new").flagged
    state.apply(RunWarning(message="oom", iter=7, category="oom_retry"))
    assert state.oom_events[0].iter == 7


def test_helpers():
    assert find_metric({"bbox/AP50": 0.5}, "ap50") == 0.5
    assert find_metric({"AP": 0.2}, "ap50") is None
    assert format_duration(None) == "--"
    assert format_duration(42) == "42s"
    assert format_duration(3725) == "1h02m"
