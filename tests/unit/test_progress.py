"""Progress on long waits: the meter's events, the plain periodic lines, the Rich display,
the status bar, and the report / evaluation / headless paths that emit them."""

from __future__ import annotations

import io
from pathlib import Path

from report_fixtures import make_finished_run

from cockpit.cli_progress import RichProgress, terminal_progress
from cockpit.engine.events import Progress, ProgressTask, event_from_dict
from cockpit.engine.headless import HeadlessPrinter
from cockpit.progress import PlainProgress, ProgressMeter, describe
from cockpit.report.build import STAGES, build_report


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_meter_throttles_but_always_sends_start_and_end() -> None:
    events: list[Progress] = []
    meter = ProgressMeter(ProgressTask.PREFLIGHT, 100_000, events.append, detail="train images", interval=3600)
    for _ in range(100_000):
        meter.advance()
    assert [(e.done, e.total) for e in events] == [(0, 100_000), (100_000, 100_000)]
    assert events[-1].finished and events[-1].rate > 0 and events[-1].eta_seconds == 0


def test_meter_finish_closes_a_loop_that_ended_early() -> None:
    events: list[Progress] = []
    meter = ProgressMeter(ProgressTask.EVALUATION, 10, events.append, interval=0)
    meter.advance(3)
    meter.finish()
    assert [e.done for e in events] == [0, 3, 10] and events[-1].finished


def test_progress_event_round_trips_through_json() -> None:
    event = Progress(ProgressTask.EVALUATION, 3, 10, "val images", 1.5, 4.7)
    again = event_from_dict(event.to_dict())
    assert again == event and again.task is ProgressTask.EVALUATION


def test_describe_counts_rate_and_eta() -> None:
    line = describe(Progress(ProgressTask.PREFLIGHT, 3200, 10_000, "train images", 1250.0, 6.2))
    assert line == "checking data 3,200/10,000 train images (1,250/s, ETA 6s)"
    megabytes = describe(Progress(ProgressTask.ANNOTATIONS, 12_000_000, 44_000_000, "bytes of big.json", 3e7, 1.1))
    assert megabytes == "loading annotations 12.0/44.0 MB of big.json (30 MB/s, ETA 1s)"
    assert describe(Progress(ProgressTask.REPORT, 5, 5, "stages")).endswith("5/5 stages (done)")


def feed(sink, clock: FakeClock, total: int, seconds_each: float) -> None:
    for done in range(total + 1):
        sink(Progress(ProgressTask.PREFLIGHT, done, total, "train images"))
        clock.now += seconds_each


def test_plain_lines_stay_silent_on_a_short_wait() -> None:
    clock, out = FakeClock(), io.StringIO()
    feed(PlainProgress(out, quiet_s=2, every_s=10, clock=clock), clock, total=100, seconds_each=0.01)
    assert out.getvalue() == ""


def test_plain_lines_every_few_seconds_on_a_long_wait_and_a_last_one() -> None:
    clock, out = FakeClock(), io.StringIO()
    feed(PlainProgress(out, quiet_s=2, every_s=10, clock=clock), clock, total=300, seconds_each=0.1)
    lines = out.getvalue().splitlines()
    # 30 s in all: one line after 2 s, then at 12, 22 s, and the closing one.
    assert len(lines) == 4, lines
    assert lines[0].startswith("checking data 20/300 train images")
    assert lines[-1] == "checking data 300/300 train images (done)"


def test_terminal_progress_picks_rich_on_a_tty_and_plain_lines_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(terminal_progress(io.StringIO()), PlainProgress)
    tty = Tty()
    bars = terminal_progress(tty)
    assert isinstance(bars, RichProgress)
    meter = ProgressMeter(ProgressTask.PREFLIGHT, 50, bars, detail="train images", interval=0)
    meter.advance(20)
    meter.finish()
    assert "checking data train images" in tty.getvalue()


def test_build_report_reports_each_stage(tmp_path: Path) -> None:
    events: list[Progress] = []
    build_report(make_finished_run(tmp_path), tmp_path / "out", progress=events.append)
    assert [e.done for e in events] == list(range(len(STAGES) + 1))
    assert all(e.task is ProgressTask.REPORT and e.total == len(STAGES) for e in events)


def test_headless_printer_prints_a_long_evaluation_periodically() -> None:
    out = io.StringIO()
    printer = HeadlessPrinter(out)
    clock = FakeClock()
    printer._progress.clock = clock
    for done in range(0, 501, 50):
        printer(Progress(ProgressTask.EVALUATION, done, 500, "val images", 10.0, (500 - done) / 10))
        clock.now += 5
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("evaluating ") for line in lines)
    assert lines[-1] == "evaluating 500/500 val images (done)"


