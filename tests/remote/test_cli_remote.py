"""`cockpit ls`, `cockpit attach` and `cockpit run --detach` from the command line: output and one-line errors."""

from __future__ import annotations

import os
import threading

from cockpit.cli import main
from cockpit.engine.events import RunFinished, RunState, RunStarted
from cockpit.remote import runs
from cockpit.remote.client import RemoteLink
from remote_support import SAMPLE, step, wait_for


def test_ls_lists_runs_and_says_when_there_are_none(tmp_path, capsys, fake_run):
    engine, run_dir = fake_run
    engine.publish(RunStarted(run_dir=str(run_dir), config={}, environment={}, total_iters=9))
    engine.publish(step(4))
    runs.write_server_info(run_dir, socket=None)
    assert main(["ls", str(run_dir.parent)]) == 0
    out = capsys.readouterr().out
    assert "shapes-1" in out and "running" in out and "4/9" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["ls", str(empty)]) == 0
    assert capsys.readouterr().out.strip() == f"no runs under {empty}"


def test_bad_targets_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["ls", str(tmp_path / "missing")]) == 2
    assert main(["attach", str(tmp_path / "missing")]) == 2
    monkeypatch.chdir(tmp_path)
    assert main(["attach"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"cockpit: {tmp_path / 'missing'}: no such directory",
        f"cockpit: {tmp_path / 'missing'}: no such run directory",
        "cockpit: no running run found under ./runs or among your detached runs; name a run directory",
    ]


def test_a_detached_run_that_cannot_start_says_why_in_one_line(tmp_path, capsys):
    code = main([
        "run", str(SAMPLE / "shapes.toml"), "--detach", "--no-check",
        "--set", f"run.output_dir='{tmp_path}'", "--resume", str(tmp_path / "no-such-run"),
    ])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("cockpit: ") and "no-such-run" in err[0], err


def test_a_run_without_a_socket_is_watched_read_only_until_it_ends(fake_run):
    engine, run_dir = fake_run
    runs.write_server_info(run_dir, socket=None, pid=os.getpid())
    engine.publish(step(0))
    link = RemoteLink(run_dir)
    assert link.read_only and "without --detach" in link.read_only_reason
    seen = []
    link.subscribe(seen.append)
    link.start()
    wait_for(lambda: len(seen) == 1, timeout=10)
    feeder = threading.Thread(target=lambda: [engine.publish(step(i)) for i in range(1, 4)])
    feeder.start()
    feeder.join()
    engine.publish(RunFinished(state=RunState.FINISHED, iter=3, epoch=1))
    assert link.wait(10), "the link stops following at the run's end"
    assert [getattr(e, "iter", None) for e in seen] == [0, 1, 2, 3, 3]
    link.close(timeout=5)


def test_attaching_to_a_damaged_finished_run_replays_it_and_says_what_was_skipped(fake_run):
    engine, run_dir = fake_run
    engine.publish(step(0))
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write('{"kind":"eval","metrics":[1,2]}\n' + "[" * 50_000 + "\n")
    engine.publish(RunFinished(state=RunState.FINISHED, iter=1, epoch=1))
    link = RemoteLink(run_dir)
    seen = []
    link.subscribe(seen.append)
    link.start()
    assert link.wait(10)
    link.close(timeout=5)
    assert [type(e).__name__ for e in seen] == ["StepMetrics", "RunFinished", "RunWarning"]
    assert seen[-1].message == "skipped 2 unreadable line(s) of events.jsonl in the replay"
