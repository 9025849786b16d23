"""The "CPU oversubscribed" rule on hand-made load histories, and the ``run.threads`` rule."""

from __future__ import annotations

import pytest

from cockpit.diagnostics.flags import CheckState
from cockpit.diagnostics.history import MetricHistory
from cockpit.diagnostics.machine_rules import cpu_oversubscribed
from cockpit.engine.cpu import LoadMeter, auto_threads


def history(samples: list[tuple[float, float]], *, cores: int = 2, threads: int = 2) -> MetricHistory:
    """``samples``: (other processes' busy cores, mean iteration time) per logged step."""
    h = MetricHistory()
    for index, (others, iter_time) in enumerate(samples, start=1):
        h.load.record(index * 10, {"cpu_others": others, "cpu_cores": cores, "torch_threads": threads}, iter_time)
    return h


def test_not_checked_until_enough_samples():
    v = cpu_oversubscribed(history([(1.0, 0.2)] * 4))
    assert v.state == CheckState.NOT_CHECKED
    assert "4/5" in v.evidence


def test_quiet_machine_is_ok():
    v = cpu_oversubscribed(history([(0.05, 0.061)] * 10))
    assert v.state == CheckState.OK
    assert "0.1 of 2" in v.evidence or "0.0 of 2" in v.evidence


def test_jump_with_other_load_is_flagged_with_evidence_and_fix():
    samples = [(0.05, 0.061)] * 6 + [(1.0, 0.204)] * 3
    v = cpu_oversubscribed(history(samples))
    assert v.state == CheckState.FLAGGED
    assert "other processes busy on 1.0 of 2" in v.evidence
    assert "3.3x" in v.evidence
    assert "run.threads = 1" in v.flag.fix
    assert v.flag.data["baseline"] == pytest.approx(0.061)


def test_slowdown_without_other_load_is_not_this_rule():
    # The model got slower (bigger images, eval in between): nobody else is on the CPU.
    samples = [(0.05, 0.061)] * 6 + [(0.1, 0.3)] * 3
    assert cpu_oversubscribed(history(samples)).state == CheckState.OK


def test_load_that_does_not_slow_a_single_thread_is_ok():
    # run.threads = 1 ("auto" chose it): the other core's load costs nothing.
    samples = [(0.05, 0.079)] * 6 + [(1.0, 0.080)] * 3
    assert cpu_oversubscribed(history(samples, threads=1)).state == CheckState.OK


def test_busy_from_the_start_with_too_many_threads_is_flagged():
    v = cpu_oversubscribed(history([(1.0, 0.2)] * 6, threads=2))
    assert v.state == CheckState.FLAGGED
    assert "torch uses 2 thread(s)" in v.evidence


def test_hysteresis_keeps_the_flag_until_the_load_really_drops():
    samples = [(0.05, 0.061)] * 6 + [(0.4, 0.2)] * 3
    assert cpu_oversubscribed(history(samples)).state == CheckState.OK
    assert cpu_oversubscribed(history(samples), previous=CheckState.FLAGGED).state == CheckState.FLAGGED
    calm = [(0.05, 0.061)] * 6 + [(0.1, 0.07)] * 3
    assert cpu_oversubscribed(history(calm), previous=CheckState.FLAGGED).state == CheckState.OK


@pytest.mark.parametrize(
    ("cores", "others", "default", "expected"),
    [(2, 0.0, 2, 2), (2, 1.0, 2, 1), (2, 0.3, 2, 2), (2, 1.9, 2, 1), (8, 2.6, 8, 5), (8, 0.0, 4, 4), (4, None, 4, 4)],
)
def test_auto_threads_uses_the_free_cores(cores, others, default, expected):
    assert auto_threads(cores, others, default) == expected


def test_load_meter_subtracts_this_process(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    stat = iter([(100.0, 400.0), (102.0, 404.0)])  # 4 CPU-seconds over 2 CPUs = 2 s wall; 2 busy
    own = iter([10.0, 11.0])  # this process used 1 of them
    meter = LoadMeter(stat=lambda: next(stat), own=lambda: next(own))
    assert meter.others() == pytest.approx(0.5)


def test_load_meter_without_proc_stat_says_unknown():
    meter = LoadMeter(stat=lambda: None, own=lambda: 0.0)
    assert meter.others() is None
