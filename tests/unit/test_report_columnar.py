"""metrics.jsonl read as columns (report/columnar.py) against the line-by-line reader,
metrics.csv from the kept text against the csv module, pixel-width decimation, the numpy EMA."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import make_finished_run

from cockpit.report import plots
from cockpit.report.columnar import TrainTable, read_metrics
from cockpit.report.export import write_metrics_csv
from cockpit.report.rundir import read_run_dir
from cockpit.runfiles.codec import dumps
from cockpit.runfiles.jsonl import METRICS_SCHEMA, read_jsonl


def _train(it: int, **extra: object) -> dict:
    record = {"kind": "train", "iter": it, "epoch": it // 4, "lr": 5e-05 if it > 6 else 0.005,
              "loss": 1.0 / it, "loss_classifier": 0.5 / it, "loss_box_reg": 0.25, "loss_objectness": 0.125,
              "loss_rpn_box_reg": 0.0625, "time": 0.2, "batch_size": 4, "rss_mb": 2100.0 + it, "timestamp": 1e9 + it}
    record.update(extra)
    return record


def _eval(it: int) -> dict:
    return {"kind": "eval", "iter": it, "epoch": it // 4, "eval": {"AP": it / 100, "per_class": {"a": 0.5}},
            "timestamp": 1e9 + it}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _plain_lines() -> list[str]:
    lines = [dumps(_train(it)) + "\n" for it in range(1, 13)]
    lines[4] = dumps(_train(5, loss=math.nan, loss_box_reg=math.inf)) + "\n"  # written as "nan" / "inf"
    lines.insert(8, dumps(_eval(8)) + "\n")
    lines.append(dumps(_eval(12)) + "\n")
    return lines


def _same_as_line_reader(path: Path) -> TrainTable | None:
    """read_metrics must give exactly what read_jsonl gives: records, bad lines, torn tail."""
    table, rest = read_metrics(path, METRICS_SCHEMA)
    reference = read_jsonl(path, METRICS_SCHEMA)
    def split(records: list[dict]) -> tuple[list[dict], list[dict]]:
        train = [r for r in records if r.get("kind", "train") == "train"]
        return train, [r for r in records if r.get("kind", "train") != "train"]

    train, others = split(rest.records)
    assert ((list(table) if table is not None else []) + train, others) == split(reference.records)
    assert (rest.bad_lines, rest.truncated_tail) == (reference.bad_lines, reference.truncated_tail)
    return table


def test_plain_lines_become_columns_equal_to_the_parsed_records(tmp_path: Path) -> None:
    table = _same_as_line_reader(_write(tmp_path / "metrics.jsonl", _plain_lines()))
    assert isinstance(table, TrainTable) and len(table) == 12
    assert table[0] == _train(1) and table[-1] == _train(12) and table[1:3] == [_train(2), _train(3)]
    assert list(table.column("iter")) == list(range(1, 13))
    assert list(table.column("lr")) == [0.005] * 6 + [5e-05] * 6
    loss = table.column("loss")
    assert math.isnan(loss[4]) and table.column("loss_box_reg")[4] == math.inf and loss[5] == 1.0 / 6
    assert table.column("grad_norm") is None and table.column("kind") is None


@pytest.mark.parametrize("damage", [
    "torn middle line", "garbage line", "string value", "null value", "float iteration", "missing key",
    "spaces", "torn tail", "true value", "nested value", "renamed key",
])
def test_damaged_or_unusual_lines_are_skipped_and_counted_as_the_line_reader_does(tmp_path: Path, damage: str) -> None:
    lines = _plain_lines()
    third = dumps(_train(3))
    lines[2] = {
        "torn middle line": third[:30] + "\n",
        "garbage line": '{"kind":"train",\x00\x01 not json\n',
        "string value": dumps(_train(3, loss="0.5")) + "\n",
        "null value": dumps(_train(3, rss_mb=None)) + "\n",
        "float iteration": third.replace('"iter":3,', '"iter":3.0,') + "\n",
        "missing key": dumps({k: v for k, v in _train(3).items() if k != "time"}) + "\n",
        "spaces": third.replace('"epoch":0', '"epoch": 0') + "\n",
        "torn tail": lines[2],
        "true value": dumps(_train(3, batch_size=True)) + "\n",
        "nested value": dumps(_train(3, batch_size={"a": 1})) + "\n",
        "renamed key": third.replace('"time":', '"tame":') + "\n",
    }[damage]
    if damage == "torn tail":
        lines.append(third[:25])
    table = _same_as_line_reader(_write(tmp_path / "metrics.jsonl", lines))
    # Only a cut-off last line leaves the other lines plain enough for the columns.
    assert (table is not None) == (damage == "torn tail")


def _csv_both_ways(run_dir: Path, tmp_path: Path) -> tuple[bytes, bytes]:
    run = read_run_dir(run_dir)
    assert isinstance(run.train, TrainTable)
    fast = write_metrics_csv(run, tmp_path / "fast.csv").read_bytes()
    run.train = list(run.train)  # the general path: the csv module over the parsed records
    return fast, write_metrics_csv(run, tmp_path / "general.csv").read_bytes()


def test_metrics_csv_from_the_kept_text_is_byte_identical(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _write(run_dir / "metrics.jsonl", _plain_lines())
    fast, general = _csv_both_ways(run_dir, tmp_path)
    assert fast == general
    assert b"\r\neval,8," in fast and b",nan," in fast and b",5e-05," in fast


def test_metrics_csv_of_a_fixture_run_is_byte_identical(tmp_path: Path) -> None:
    fast, general = _csv_both_ways(make_finished_run(tmp_path / "runs", telemetry=True), tmp_path)
    assert fast == general and fast.count(b"\r\n") > 60


def test_columns_of_a_table_match_the_record_by_record_series(tmp_path: Path) -> None:
    run = read_run_dir(make_finished_run(tmp_path, telemetry=True))
    assert isinstance(run.train, TrainTable)
    for key in ("loss", "lr", "roi_fg", "rss_mb", "not_logged"):
        table_xs, table_ys = run.series(key)
        run_list = read_run_dir(run.path)
        run_list.train = list(run_list.train)
        assert (table_xs, table_ys) == run_list.series(key)


def test_a_column_logged_on_some_records_keeps_only_those(tmp_path: Path) -> None:
    run = read_run_dir(make_finished_run(tmp_path))
    run.train = [{"iter": 1, "loss": 0.5}, {"iter": 2}, {"iter": 3, "loss": 0.25}, {"iter": 4, "loss": None}]
    assert run.series("loss") == ([1.0, 3.0], [0.5, 0.25])
    assert run.series("grad_norm") == ([], [])


def test_decimating_to_the_plot_width_keeps_each_bucket_min_and_max() -> None:
    figure, axes = plots._new_figure(11, 8.4, 3, 2)
    ax = axes[0][0]
    width = plots.plot_width(ax)
    assert 100 < width < plots.MAX_POINTS  # a panel is a few hundred pixels wide
    rng = np.random.default_rng(0)
    ys = rng.random(100_000)
    ys[31_337] = 500.0
    ys[50_000] = -3.0
    out = plots.decimate(np.arange(100_000.0), ys, width)
    assert len(out.x) == width
    starts = (np.arange(width) * 100_000) // width
    for bucket in (0, 7, width // 2, width - 1):
        chunk = ys[starts[bucket] : (starts[bucket + 1] if bucket + 1 < width else None)]
        assert out.lo[bucket] == chunk.min() and out.hi[bucket] == chunk.max()
    assert out.hi.max() == 500.0 and out.lo.min() == -3.0
    plots._draw_series(ax, np.arange(100_000.0), ys, plots.ema_array(ys, 500), "#000000", "loss")
    assert all(len(line.get_xdata()) <= width for line in ax.lines)


def _plain_ema(values: list[float], span: float) -> list[float]:
    alpha = 2.0 / (span + 1.0)
    acc = weight = 0.0
    out = []
    for value in values:
        if math.isfinite(value):
            acc, weight = (1 - alpha) * acc + alpha * value, (1 - alpha) * weight + alpha
        out.append(acc / weight if weight else math.nan)
    return out


@pytest.mark.parametrize("span", [0.5, 1.0, 5.0, 50.0, 500.0])
def test_numpy_ema_matches_the_plain_recurrence(span: float) -> None:
    rng = np.random.default_rng(1)
    values = (rng.random(20_000) * 3 + np.sin(np.arange(20_000))).tolist()
    values[0] = values[7] = math.nan
    values[900] = math.inf
    got = plots.ema_array(values, span)
    want = np.array(_plain_ema(values, span))
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.allclose(got, want, rtol=1e-10, atol=0, equal_nan=True)
    flat = plots.ema_array(list(itertools.repeat(0.1, 5000)), span)
    assert (flat == 0.1).all()


def test_compacted_step_events_keep_every_figure_the_report_derives_from_events(tmp_path: Path) -> None:
    from cockpit.report import analysis as an
    from cockpit.report.rundir import _compact_steps

    def step(it: int, stamp: object) -> dict:
        return {"kind": "step", "time": stamp, "iter": it}

    events = [step(0, 50.0)]  # a step before any start: it opens the first session
    events += [{"kind": "run_started", "time": 100.0, "start_iter": 0}]
    events += [step(it, 100.0 + it) for it in range(1, 500)] + [step(500, 90.0), step(501, "nan")]
    events += [{"kind": "state", "state": "PAUSED", "previous": "RUNNING", "time": 700.0, "iter": 501}]
    events += [step(it, 650.0 + it) for it in range(502, 900)]
    events += [{"kind": "run_started", "time": 5000.0, "start_iter": 800, "resumed_from": "last.pt"}]
    events += [step(it, 5000.0 + it) for it in range(800, 1200)]
    events += [{"kind": "finished", "time": 6300.0, "iter": 1199, "outcome": "finished"}]
    run = read_run_dir(tmp_path)  # an empty folder: only the events matter here
    run.has_events = True
    figures = []
    for kept in (events, _compact_steps(events)):
        run.events = kept
        figures.append((an.start_time(run), an.active_duration(run), an.run_status(run), an.timeline(run),
                        an.timeline_counts(run), an.last_iteration(run)))
    assert figures[0] == figures[1]
    assert len(_compact_steps(events)) < 20


def test_a_resumed_history_leaves_the_table_for_the_one_monotonic_history(tmp_path: Path) -> None:
    lines = [dumps(_train(it)) + "\n" for it in [*range(1, 11), *range(6, 13)]]  # resumed from iteration 5
    _write(tmp_path / "metrics.jsonl", lines)
    run = read_run_dir(tmp_path)
    assert not isinstance(run.train, TrainTable)
    assert [r["iter"] for r in run.train] == list(range(1, 13))
    assert any("5 record(s) logged after a checkpoint" in p for p in run.problems)
    assert run.series("loss")[0] == [float(it) for it in range(1, 13)]


def test_a_table_parses_its_records_once_when_looped_over(tmp_path: Path) -> None:
    table, _rest = read_metrics(_write(tmp_path / "metrics.jsonl", _plain_lines()), METRICS_SCHEMA)
    assert isinstance(table, TrainTable)
    first = list(table)
    assert list(table) == first and all(a is b for a, b in zip(table, first)) and table[3] is first[3]
    first[0]["roi_fg"] = 1.0  # a caller's change to a record stays with it, as in a list
    assert table[0]["roi_fg"] == 1.0


def test_the_iteration_column_itself_is_a_series_like_any_other(tmp_path: Path) -> None:
    run = read_run_dir(make_finished_run(tmp_path))
    run.train = list(run.train)
    loss = run.series("loss")
    assert run.series("iter") == (loss[0], loss[0]) and run.series("loss") == loss
