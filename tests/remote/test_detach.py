"""Real detached runs on the tiny sample: detach, attach, pause, detach, resume, faults."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

from cockpit.engine.commands import Pause, Resume
from cockpit.engine.events import Outcome, RunFinished, RunState, StepMetrics
from cockpit.remote import protocol, runs
from cockpit.remote.client import RemoteLink, read_events
from remote_support import RawClient, wait_for


def attach(run_dir) -> tuple[RemoteLink, list]:
    link = RemoteLink(run_dir)
    seen: list = []
    link.subscribe(seen.append)
    link.start()
    return link, seen


def finished(seen) -> RunFinished | None:
    return next((e for e in seen if isinstance(e, RunFinished)), None)


def test_detach_attach_pause_quit_stays_paused_attach_resume_finishes(detach):
    run = detach("run.max_iters=20")
    assert runs.inspect(run.run_dir).state == "running"
    assert run.pid != os.getpid() and os.getsid(run.pid) != os.getsid(0), "the run has its own session"
    stat_fields = open(f"/proc/{run.pid}/stat").read().rsplit(")", 1)[1].split()
    assert stat_fields[4] == "0", "no controlling terminal"
    assert os.readlink(f"/proc/{run.pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{run.pid}/fd/1") == os.readlink(f"/proc/{run.pid}/fd/2") == str(run.run_dir / "cockpit.log")

    link, seen = attach(run.run_dir)
    link.send(Pause())
    wait_for(lambda: link.state is RunState.PAUSED)
    link.close(timeout=10)  # what quitting an attached cockpit does

    time.sleep(2)
    steps_then = [e.iter for e in read_events(run.run_dir / "events.jsonl") if isinstance(e, StepMetrics)]
    time.sleep(2)
    steps_now = [e.iter for e in read_events(run.run_dir / "events.jsonl") if isinstance(e, StepMetrics)]
    assert steps_now == steps_then, "no iteration runs while paused, attached or not"
    assert runs.inspect(run.run_dir).state == "paused"  # what `cockpit ls` shows

    link, seen = attach(run.run_dir)
    wait_for(lambda: link.state is RunState.PAUSED, timeout=30)  # the replayed history says so
    link.send(Resume())
    wait_for(lambda: finished(seen) is not None, timeout=300)
    assert finished(seen).outcome is Outcome.FINISHED and finished(seen).iter == 20
    link.wait(30)
    link.close(timeout=5)
    wait_for(lambda: not runs.pid_alive(run.pid), timeout=60)
    info = runs.inspect(run.run_dir)
    assert info.state == "finished" and info.socket is None
    assert not run.socket.exists()
    assert "run finished at iteration 20" in (run.run_dir / "cockpit.log").read_text()


def test_sigkill_of_an_attached_cockpit_leaves_the_run_going(detach):
    run = detach("run.max_iters=15")
    client = subprocess.Popen(
        [sys.executable, "-m", "cockpit.cli", "attach", str(run.run_dir), "--headless"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        first = client.stdout.readline()
        assert first.startswith("run "), first
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait(30)
    link, seen = attach(run.run_dir)
    wait_for(lambda: finished(seen) is not None, timeout=300)
    assert finished(seen).outcome is Outcome.FINISHED and finished(seen).iter == 15
    link.close(timeout=5)


def test_malformed_messages_get_an_error_reply_and_the_run_goes_on(detach):
    run = detach("run.max_iters=15")
    socket_mode = os.stat(run.socket).st_mode
    assert stat.S_ISSOCK(socket_mode) and stat.S_IMODE(socket_mode) == 0o600
    assert stat.S_IMODE(os.stat(run.socket.parent).st_mode) == 0o700

    client = RawClient(run.socket, timeout=120)
    assert client.read()["type"] == "hello"
    client.send(b"this is not json\n")
    assert client.read_until(lambda m: m["type"] == "error")["message"].startswith("not a JSON object")
    client.send(b'{"v": 1, "type": "command", "id": "x", "command": {"command": "format_disk"}}\n')
    assert "unknown command" in client.read_until(lambda m: m["type"] == "error")["message"]
    client.send(b"{" * (protocol.MAX_COMMAND_BYTES * 2) + b"\n")
    assert "too long" in client.read_until(lambda m: m["type"] == "error")["message"]
    end = client.read_until(lambda m: m["type"] == "event" and m["event"]["kind"] == "finished")
    assert end["event"]["outcome"] == "finished" and end["event"]["iter"] == 15
    assert client.read_until(lambda m: m["type"] == "bye")
    client.close()
