"""The tolerant run-directory readers and what the report derives from them."""

from __future__ import annotations

import json
from pathlib import Path

from report_fixtures import make_damaged_run, make_finished_run, make_flagged_run

from cockpit.diagnostics.catalog import ALL_RULES
from cockpit.engine.events import RunFinished, RunStarted, RunState, StateChanged, StepMetrics
from cockpit.report import analysis as an
from cockpit.report.rundir import read_jsonl, read_run_dir


def test_read_jsonl_skips_truncated_tail_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\nnot json\n\n[1, 2]\n{"a": 2}\n{"a": 3, "b"', encoding="utf-8")
    data = read_jsonl(path)
    assert [r["a"] for r in data.records] == [1, 2]
    assert data.truncated_tail is True
    assert data.bad_lines == [2, 4]
    missing = read_jsonl(tmp_path / "absent.jsonl")
    assert missing.exists is False and missing.records == []


def test_read_jsonl_survives_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xff\xfe"}\n')
    assert len(read_jsonl(path).records) == 2


def test_damaged_run_lists_what_is_missing(tmp_path: Path) -> None:
    run = read_run_dir(make_damaged_run(tmp_path))
    assert len(run.train) == 10 and run.evals == [] and run.events == []
    text = " ".join(run.missing)
    for piece in ("events.jsonl is missing", "No evaluation yet", "No checkpoint", "preflight.json is missing"):
        assert piece in text
    assert any("truncated" in p for p in run.problems)
    assert run.config is not None and run.config.run.name == "broken"
    assert an.run_status(run).value == "unknown"
    assert an.active_duration(run) is not None  # from the metrics timestamps


def test_step_events_stand_in_for_missing_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    steps = [
        StepMetrics(iter=i, epoch=0, lr=0.01, losses={"loss_classifier": 0.5, "loss_box_reg": 0.4, "loss_objectness": 0.1,
                    "loss_rpn_box_reg": 0.05}, loss=1.05, iter_time=0.2, memory={"rss_mb": 900.0}, time=100.0 + i).to_dict()
        for i in (10, 20)
    ]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    run = read_run_dir(run_dir)
    assert [r["iter"] for r in run.train] == [10, 20]
    assert run.train[0]["loss_box_reg"] == 0.4 and run.train[0]["rss_mb"] == 900.0 and run.train[0]["time"] == 0.2
    assert run.series("loss_objectness") == ([10, 20], [0.1, 0.1])


def test_an_events_only_run_still_plots_memory(tmp_path: Path) -> None:
    """metrics.jsonl deleted: the records rebuilt from step events carry the writer's
    ``mem_`` columns, so the memory plot has its GPU series."""
    from cockpit.report.plots import memory_plot

    memory = {"allocated_mb": 512.0, "reserved_mb": 1024.0, "peak_mb": 700.0, "rss_mb": 900.0}
    steps = [
        StepMetrics(iter=i, epoch=0, lr=0.01, losses={}, loss=1.0, memory=memory, time=100.0 + i).to_dict()
        for i in (1, 2, 3)
    ]
    run = read_run_dir(_run_with_events(tmp_path, steps))
    assert run.series("mem_allocated_mb") == ([1, 2, 3], [512.0, 512.0, 512.0])
    assert run.series("mem_peak_mb")[1] == [700.0] * 3
    assert memory_plot(run) is not None


def test_a_resumed_events_only_run_keeps_one_monotonic_history(tmp_path: Path) -> None:
    steps = [StepMetrics(iter=i, epoch=0, lr=0.01, losses={}, loss=1.0).to_dict() for i in (1, 2, 3, 4)]
    resumed = RunStarted(run_dir="x", config={}, environment={}, start_iter=2).to_dict()
    again = [StepMetrics(iter=i, epoch=0, lr=0.01, losses={}, loss=1.0).to_dict() for i in (3, 4, 5)]
    run = read_run_dir(_run_with_events(tmp_path, steps + [resumed] + again))
    assert [r["iter"] for r in run.train] == [1, 2, 3, 4, 5]


def test_malformed_lines_do_not_stop_the_report(tmp_path: Path) -> None:
    steps = [StepMetrics(iter=i, epoch=0, lr=0.01, losses={}, loss=1.0).to_dict() for i in (1, 2)]
    run_dir = _run_with_events(tmp_path, steps)
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write('{"kind":"eval","metrics":[1,2]}\n' + "[" * 50_000 + "\n")
    (run_dir / "metrics.jsonl").write_text('{"kind":"train","iter":1,"loss":1.0}\n{"kind":"eval","iter":1,"eval":[1]}\n')
    run = read_run_dir(run_dir)
    assert [r["iter"] for r in run.train] == [1] and run.evals == []
    assert run.skipped == [
        "events.jsonl: 2 unreadable line(s) skipped (line 3, 4)",
        "metrics.jsonl: 1 unreadable line(s) skipped (line 2)",
    ]


def _run_with_events(tmp_path: Path, events: list[dict]) -> Path:
    run_dir = tmp_path / "r"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir


def test_status_from_events(tmp_path: Path) -> None:
    started = RunStarted(run_dir="x", config={}, environment={}, time=1.0).to_dict()
    failed = RunFinished(state=RunState.FAILED, iter=5, epoch=0, outcome="failed", reason="CUDA OOM", time=2.0).to_dict()
    run = read_run_dir(_run_with_events(tmp_path, [started, failed]))
    assert an.run_status(run) == an.Status("failed", "CUDA OOM")
    # Resumed after the failure: running again.
    run = read_run_dir(_run_with_events(tmp_path, [started, failed, dict(started, time=3.0)]))
    assert an.run_status(run).value == "running"
    assert an.active_duration(run) == 1.0  # the gap between the failure and the resume is not counted
    paused = StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="NaN loss", time=4.0).to_dict()
    run = read_run_dir(_run_with_events(tmp_path, [started, paused]))
    assert an.run_status(run) == an.Status("running", "paused: NaN loss")


def test_finished_and_stopped_runs(tmp_path: Path) -> None:
    assert an.run_status(read_run_dir(make_finished_run(tmp_path / "a"))).value == "finished"
    run = read_run_dir(make_flagged_run(tmp_path / "b"))
    assert an.run_status(run).value == "stopped"
    assert an.last_iteration(run) == (600, 1)
    best = an.best_eval(run)
    assert best is not None and best["iter"] == 600
    assert an.environment(run)["gpu_name"] == "NVIDIA H100 80GB HBM3"


def test_checklist_final_states_and_flags(tmp_path: Path) -> None:
    run = read_run_dir(make_flagged_run(tmp_path))
    rows, raised = an.checklist(run)
    assert [r.rule for r in rows] == [r.id for r in ALL_RULES]
    state = {r.rule: r.state for r in rows}
    assert state["nonfinite_loss"] == "OK"  # flagged at 250, cleared at 350
    assert state["no_val_detections"] == "FLAGGED"
    assert state["empty_images"] == "FLAGGED" and state["degenerate_boxes"] == "OK"
    assert state["cuda_oom"] == "not yet checked"
    assert [(f.rule, f.iter) for f in raised] == [("empty_images", None), ("nonfinite_loss", 250), ("no_val_detections", 300)]
    assert raised[1].fix.startswith("lower optim.lr")


def test_checklist_keeps_unknown_rules(tmp_path: Path) -> None:
    flag = {"kind": "flag", "rule": "brand_new_rule", "title": "Something new", "status": "FLAGGED", "iter": 3, "time": 1.0}
    rows, raised = an.checklist(read_run_dir(_run_with_events(tmp_path, [flag])))
    assert rows[-1].rule == "brand_new_rule" and rows[-1].state == "FLAGGED"
    assert raised[0].title == "Something new"


def test_timeline_collapses_floods_and_keeps_user_actions(tmp_path: Path) -> None:
    run = read_run_dir(make_flagged_run(tmp_path))
    rows = an.timeline(run)
    categories = [r.category for r in rows]
    assert categories.count("lr-schedule") == 1
    schedule = rows[categories.index("lr-schedule")]
    assert schedule.count == 30 and schedule.text == "LR 0 -> 0.01 (schedule)"
    assert categories.count("lr-user") == 2
    for category in ("pause", "resume", "stop", "skipped-sample", "oom-retry", "nan-rewind", "lr-recovery", "eval", "checkpoint", "flag", "finish"):
        assert category in categories, category
    counts = an.timeline_counts(run)
    assert counts["lr-schedule"] == 30 and counts["skipped-sample"] == 2


def test_unknown_event_kinds_are_ignored(tmp_path: Path) -> None:
    events = [{"kind": "from_the_future", "time": 1.0}, {"no_kind": True}]
    run = read_run_dir(_run_with_events(tmp_path, events))
    assert an.timeline(run) == []
    assert an.run_status(run).value == "running"


def test_resume_command_quotes_paths(tmp_path: Path) -> None:
    run_dir = tmp_path / "my runs" / "demo-1"
    run_dir.mkdir(parents=True)
    command = an.resume_command(read_run_dir(run_dir))
    assert command == f"cockpit run '{run_dir}/config.toml' --resume '{run_dir}'"


def _step_line(it: int) -> str:
    from cockpit.runfiles.codec import dumps

    step = StepMetrics(iter=it, epoch=0, lr=0.01, losses={"loss_classifier": 0.5}, loss=0.5, iter_time=0.2, time=1000.0 + it)
    return dumps(step.to_dict()) + "\n"


def test_skimmed_step_events_keep_time_and_iter_and_damage_is_still_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    torn = _step_line(2)[:40] + "\n"  # cut off, then the writer carried on on the next line
    path.write_text(_step_line(1) + torn + _step_line(3))
    skimmed = read_jsonl(path, skim=("step",))
    assert skimmed.records == [{"kind": "step", "time": 1001.0, "iter": 1}, {"kind": "step", "time": 1003.0, "iter": 3}]
    assert skimmed.bad_lines == [2] == read_jsonl(path).bad_lines
    full = read_jsonl(path).records
    assert [(r["kind"], r["time"], r["iter"]) for r in full] == [(r["kind"], r["time"], r["iter"]) for r in skimmed.records]


def test_columns_match_the_record_by_record_series(tmp_path: Path) -> None:
    run = read_run_dir(make_finished_run(tmp_path))
    xs, ys = run.series("loss")
    assert xs == [float(r["iter"]) for r in run.train] and ys == [r["loss"] for r in run.train]
    # Odd values (a NaN string, a quoted number, a missing value, a bool) take the general path.
    run.train = [{"iter": 1, "loss": "nan"}, {"iter": 2, "loss": "0.5"}, {"iter": 3}, {"iter": 4, "loss": True},
                 {"iter": "5", "loss": 0.25}]
    xs, ys = run.series("loss")
    assert xs == [1.0, 2.0, 5.0] and ys[1:] == [0.5, 0.25] and ys[0] != ys[0]
