"""Run discovery: states for `cockpit ls`, what `attach auto` picks, socket paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from cockpit.engine.events import EvalResult, RunFinished, RunStarted, RunState, StateChanged
from cockpit.engine.rundir import EVENTS, dumps
from cockpit.remote import runs


def make_run(output_dir, name, events, pid=None, started=None):
    run_dir = output_dir / name
    run_dir.mkdir(parents=True)
    (run_dir / EVENTS).write_text("".join(dumps(e.to_dict()) + "\n" for e in events))
    if pid is not None:
        info = runs.write_server_info(run_dir, socket=run_dir / "s.sock", pid=pid)
        if started is not None:
            info["started"] = started
            (run_dir / runs.SERVER_FILE).write_text(json.dumps(info))
    return run_dir


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


STARTED = RunStarted(run_dir="x", config={}, environment={}, total_iters=100)
EVAL = EvalResult(iter=50, epoch=1, metrics={"AP50": 0.75, "AP": 0.5}, per_class={})


def test_states_from_events_and_the_process(tmp_path):
    out = tmp_path / "runs"
    make_run(out, "done", [STARTED, EVAL, RunFinished(state=RunState.FINISHED, iter=100, epoch=2)], pid=dead_pid())
    make_run(out, "failed", [STARTED, RunFinished(state=RunState.FAILED, iter=3, epoch=1, outcome="failed")])
    make_run(out, "stale", [STARTED, StateChanged(state=RunState.RUNNING, previous=RunState.IDLE, iter=7)], pid=dead_pid())
    make_run(out, "live", [STARTED], pid=os.getpid())
    make_run(out, "legacy", [STARTED])  # no server.json: nothing says it lives
    states = {run.run_dir.name: run for run in runs.find_runs(out)}
    assert {name: run.state for name, run in states.items()} == {
        "done": "finished", "failed": "failed", "stale": "stale", "live": "running", "legacy": "stale",
    }
    assert states["done"].best_ap50 == 0.75 and states["done"].iteration == 100
    assert states["stale"].iteration == 7 and states["stale"].total_iters == 100
    assert states["live"].attachable and not states["stale"].attachable


def test_a_resumed_run_counts_only_its_newest_finish(tmp_path):
    run = make_run(tmp_path, "r", [STARTED, RunFinished(state=RunState.FINISHED, iter=10, epoch=1), STARTED], pid=os.getpid())
    assert runs.inspect(run).state == "running"


def test_a_torn_last_line_is_skipped(tmp_path):
    run = make_run(tmp_path, "r", [STARTED, EVAL], pid=dead_pid())
    with open(run / EVENTS, "a") as handle:
        handle.write('{"kind": "finished", "sta')
    assert runs.inspect(run).state == "stale"


def test_ls_table(tmp_path):
    make_run(tmp_path, "a", [STARTED, EVAL], pid=os.getpid())
    table = runs.format_table(runs.find_runs(tmp_path))
    header, row = table.splitlines()
    assert header.split() == ["RUN", "STATE", "ITER", "BEST", "AP50", "AGE"]
    assert "running" in row and "50/100" in row and "0.750" in row and row.endswith("attach")


def test_attach_targets(tmp_path, monkeypatch):
    out = tmp_path / "runs"
    make_run(out, "old", [STARTED], pid=os.getpid(), started=time.time() - 100)
    make_run(out, "new", [STARTED], pid=os.getpid(), started=time.time())
    make_run(out, "newest-but-done", [STARTED, RunFinished(state=RunState.FINISHED, iter=1, epoch=1)])
    assert runs.resolve_attach_target(str(out)).name == "new"
    assert runs.resolve_attach_target(str(out / "old")).name == "old"
    monkeypatch.chdir(tmp_path)
    assert runs.resolve_attach_target("auto").name == "new"
    with pytest.raises(runs.RunLookupError, match="no such run directory"):
        runs.resolve_attach_target(str(tmp_path / "nope"))
    monkeypatch.chdir(out / "old")
    with pytest.raises(runs.RunLookupError, match="no running run"):
        runs.resolve_attach_target("auto")


def test_registered_runs_are_found_from_anywhere(tmp_path, monkeypatch):
    run = make_run(tmp_path / "far" / "away", "r", [STARTED], pid=os.getpid())
    runs.register(run)
    monkeypatch.chdir(tmp_path)
    assert runs.resolve_attach_target("auto") == run.resolve()
    runs.unregister(run)
    assert runs.registered() == []


def test_a_long_run_dir_gets_a_short_private_socket_path(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = runs.socket_path_for(deep)
    assert len(str(path)) <= runs.SOCKET_PATH_LIMIT
    assert oct(os.stat(path.parent).st_mode & 0o777) == oct(0o700)
    short = tmp_path.parent / "r"
    short.mkdir(exist_ok=True)
    assert runs.socket_path_for(short) == short.resolve() / runs.CONTROL_DIR / runs.SOCKET_NAME


def test_paused_and_stopped_runs_are_shown_as_such(tmp_path):
    out = tmp_path / "runs"
    paused = StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING, reason="user", iter=20)
    resumed = StateChanged(state=RunState.RUNNING, previous=RunState.PAUSED, reason="user", iter=20)
    make_run(out, "paused", [STARTED, paused], pid=os.getpid())
    make_run(out, "resumed", [STARTED, paused, resumed], pid=os.getpid())
    make_run(out, "stopped", [STARTED, RunFinished(state=RunState.FINISHED, iter=30, epoch=1, outcome="stopped")])
    make_run(out, "paused-then-killed", [STARTED, paused], pid=dead_pid())
    states = {run.run_dir.name: run for run in runs.find_runs(out)}
    assert {name: run.state for name, run in states.items()} == {
        "paused": "paused", "resumed": "running", "stopped": "stopped", "paused-then-killed": "stale",
    }
    assert states["paused"].attachable  # a paused run is alive: attach can resume it
    assert "paused" in runs.format_table([states["paused"]]).splitlines()[1]


def test_ls_finds_runs_in_the_output_dirs_runs_were_started_in(tmp_path, monkeypatch, runtime_dir):
    elsewhere = tmp_path / "project" / "sample_data" / "runs"
    run = make_run(elsewhere, "shapes-1", [STARTED, EVAL], pid=dead_pid())
    monkeypatch.chdir(tmp_path)
    assert runs.default_runs() == []  # nothing under ./runs, and nothing remembered yet
    runs.remember_output_dir(run)
    runs.remember_output_dir(run)  # remembered once
    assert [r.run_dir.resolve() for r in runs.default_runs()] == [run.resolve()]
    assert runs.remembered_output_dirs() == [elsewhere.resolve()]


def test_the_output_dir_list_forgets_folders_that_are_gone(tmp_path, runtime_dir):
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    for folder in (kept, gone):
        make_run(folder, "r", [STARTED], pid=dead_pid())
        runs.remember_output_dir(folder / "r")
    import shutil

    shutil.rmtree(gone)
    runs.remember_output_dir(kept / "r")
    lines = (runtime_dir / "cockpit" / "runs" / runs.OUTPUT_DIRS_FILE).read_text().splitlines()
    assert lines == [str(kept.resolve())]


def test_malformed_and_deep_lines_are_skipped_and_counted(tmp_path):
    run = make_run(tmp_path, "r", [STARTED, EVAL], pid=dead_pid())
    with open(run / EVENTS, "a") as handle:
        handle.write('{"kind":"eval","metrics":[1,2]}\n' + "[" * 50_000 + "\n")
        handle.write(dumps(RunFinished(state=RunState.FINISHED, iter=60, epoch=2).to_dict()) + "\n")
    info = runs.inspect(run)
    assert info.state == "finished" and info.best_ap50 == 0.75 and info.iteration == 60
    assert info.bad_lines == 2
    note = runs.skipped_note([info])
    assert note == "skipped 2 unreadable line(s) of events.jsonl in r (2)"
