"""The run-directory codec: value encoding, tolerant readers, atomic writes, the owner lock."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

from cockpit.runfiles import EVENT_SCHEMA, RunBusyError, RunFolder, RunLock, codec, layout, read_jsonl, write_atomic
from cockpit.runfiles.jsonl import drop_torn_tail, split_after


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_nonfinite_floats_round_trip_as_strings() -> None:
    line = codec.dumps({"loss": math.nan, "lr": math.inf, "low": -math.inf, "ok": 1.5, "name": "x"})
    assert json.loads(line) == {"loss": "nan", "lr": "inf", "low": "-inf", "ok": 1.5, "name": "x"}
    back = codec.decode(codec.loads(line))
    assert math.isnan(back["loss"]) and back["lr"] == math.inf and back["low"] == -math.inf and back["name"] == "x"
    assert codec.number("nan") != codec.number("nan")  # NaN kept for the plots
    assert codec.number(True) is None and codec.number("abc") is None and codec.number("2.5") == 2.5
    assert codec.finite("inf") is None and codec.finite(3) == 3.0


def test_a_line_of_fifty_thousand_brackets_is_a_value_error_not_recursion() -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        codec.loads("[" * 50_000)
    with pytest.raises(ValueError):
        codec.loads(b"{" * 50_000)
    # Brackets inside strings are text, not nesting.
    assert codec.loads(json.dumps({"s": "[" * 500})) == {"s": "[" * 500}


def test_reader_skips_and_counts_bad_lines_and_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / layout.EVENTS
    good = {"kind": "eval", "iter": 3, "metrics": {"AP50": 0.5}, "per_class": {}}
    lines = [
        json.dumps(good),
        '{"kind":"eval","metrics":[1,2]}',  # a list where a dict belongs
        "[" * 50_000,  # too deep
        "not json",
        '{"kind":"step","iter":"seven"}',  # a string iteration
        '{"kind":"step","iter":true}',  # a bool is not an iteration
        json.dumps({"kind": "step", "iter": 4, "loss": "nan", "losses": {}, "memory": {}}),
    ]
    path.write_text("\n".join(lines) + '\n{"kind": "st', encoding="utf-8")
    data = read_jsonl(path, EVENT_SCHEMA)
    assert [r["iter"] for r in data.records] == [3, 4]
    assert data.bad_lines == [2, 3, 4, 5, 6]
    assert data.truncated_tail
    said = data.describe("events.jsonl")
    assert "5 unreadable line(s) skipped (line 2, 3, 4, 5, 6)" in said[-1]
    assert all("\n" not in line for line in said)


def test_write_atomic_replaces_whole_files_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_split_after_moves_records_past_the_checkpoint(tmp_path: Path) -> None:
    metrics = tmp_path / layout.METRICS
    rows = [{"kind": "train", "iter": i} for i in (1, 2, 3, 4, 5)] + [{"kind": "eval", "iter": 4, "eval": {}}]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "train", "it')
    moved = split_after(metrics, 3, tmp_path / layout.ABANDONED)
    assert moved == 3
    assert [json.loads(x)["iter"] for x in metrics.read_text().splitlines()] == [1, 2, 3]
    assert [json.loads(x)["iter"] for x in (tmp_path / layout.ABANDONED).read_text().splitlines()] == [4, 5, 4]


def test_drop_torn_tail_cuts_only_an_unterminated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"a":1}\n{"a":')
    assert drop_torn_tail(path) and path.read_text() == '{"a":1}\n'
    assert not drop_torn_tail(path) and path.read_text() == '{"a":1}\n'


def test_a_second_owner_is_refused_naming_the_pid(tmp_path: Path) -> None:
    first = RunLock(tmp_path).acquire()
    first.record_owner()
    with pytest.raises(RunBusyError, match=f"in use by pid {os.getpid()}") as caught:
        RunLock(tmp_path).acquire()
    assert "\n" not in str(caught.value)
    first.release()
    RunLock(tmp_path).acquire().release()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from cockpit.runfiles import RunLock\n"
        "lock = RunLock(sys.argv[1]).acquire(); lock.record_owner()\n"
        "print('locked', flush=True); time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusyError, match=f"pid {child.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The kernel dropped the dead process's lock: the next owner simply takes it.
    lock = RunLock(tmp_path).acquire()
    assert lock.held
    lock.release()


def test_claim_and_abandon_leave_an_existing_run_byte_identical(tmp_path: Path) -> None:
    run = layout.create(tmp_path, "r")
    (run / layout.METRICS).write_text('{"kind":"train","iter":1}\n{"kind":"train","iter":2}\n')
    (run / layout.CONFIG).write_text("[run]\n")
    before = tree_digest(run)
    folder = RunFolder.claim(run)
    folder.release(abandon=True)
    assert tree_digest(run) == before


def test_commit_on_resume_cleans_debris_and_cuts_the_history(tmp_path: Path) -> None:
    run = layout.create(tmp_path, "r")
    (run / layout.METRICS).write_text("".join(json.dumps({"kind": "train", "iter": i}) + "\n" for i in range(1, 8)))
    (run / layout.EVENTS).write_text('{"kind":"step","iter":7}\n{"kind":"st')
    (run / layout.CHECKPOINTS / ".last.pt.abc123.tmp").write_bytes(b"x" * 100)
    folder = RunFolder.claim(run)
    folder.commit(config_text="[run]\n", resume_iteration=5)
    assert folder.abandoned_records == 2 and folder.removed_temp_files == [".last.pt.abc123.tmp"]
    assert not list((run / layout.CHECKPOINTS).glob("*.tmp"))
    assert (run / layout.EVENTS).read_text().endswith("}\n")
    assert (run / layout.LOCK).read_text().strip() == str(os.getpid())
    folder.release()


def test_monotonic_keeps_the_resumed_history() -> None:
    from cockpit.runfiles.records import monotonic

    rows = [{"iter": i} for i in (1, 2, 3, 4, 3, 4, 5)] + [{"kind": "no iter"}, {"iter": 6}]
    kept, dropped = monotonic(rows)
    assert [r.get("iter") for r in kept] == [1, 2, 3, 4, 5, None, 6] and dropped == 2
    evals = [{"iter": 10}, {"iter": 10}, {"iter": 20}, {"iter": 15}]
    kept, dropped = monotonic(evals, keep_equal=True)
    assert [r["iter"] for r in kept] == [10, 10, 15] and dropped == 1


def test_a_forked_child_does_not_keep_a_dead_owners_lock(tmp_path: Path) -> None:
    """DataLoader workers are forked: the lock must die with the owner, not with its workers."""
    import time

    lock = RunLock(tmp_path).acquire()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the "worker": outlives its owner for a while
        os.write(write_end, b"up")  # the fork hooks have run by now
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(read_end, 2) == b"up"
        lock.__del__()  # the owner's descriptor closes without an unlock, as when it is killed
        RunLock(tmp_path).acquire().release()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(read_end)
        os.close(write_end)
