"""Fixtures for the detach/attach tests: a private runtime dir, a fake engine, detached runs."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from remote_support import FakeEngine, SAMPLE, wait_for


@pytest.fixture(autouse=True)
def runtime_dir(monkeypatch):
    """A short private XDG_RUNTIME_DIR, so no test touches the user's registry or sockets."""
    path = Path(tempfile.mkdtemp(prefix="ckrt-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_run(tmp_path):
    """``(engine, run_dir)``: a FakeEngine writing ``events.jsonl`` in a fresh run dir."""
    run_dir = tmp_path / "runs" / "shapes-1"
    run_dir.mkdir(parents=True)
    engine = FakeEngine(run_dir)
    yield engine, run_dir
    engine.close()


@pytest.fixture
def detach(tmp_path):
    """``detach(*overrides) -> Detached``: a real background run on the tiny sample.

    Every process started is killed at teardown if it is still alive.
    """
    from cockpit.remote.daemon import DetachRequest, spawn

    started = []

    def make(*overrides: str):
        base = [
            f"run.output_dir='{tmp_path / 'runs'}'",
            "run.max_iters=12",
            "run.log_every=1",
            "eval.every_epochs=0",
            "optim.warmup_iters=2",
            "data.num_workers=0",
        ]
        detached = spawn(DetachRequest(config_path=str(SAMPLE / "shapes.toml"), overrides=base + list(overrides)))
        started.append(detached.pid)
        return detached

    yield make
    for pid in started:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        wait_for(lambda: not _alive(pid), timeout=10)


def _alive(pid: int) -> bool:
    from cockpit.remote.runs import pid_alive

    return pid_alive(pid)
