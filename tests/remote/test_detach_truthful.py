"""`cockpit run --detach` says what is true (#14.8): started only once training runs, the
reason when it died first, an attach line a shell can paste, no import from the cwd."""

from __future__ import annotations

import os
import re
import shlex
import signal

from cockpit.cli import main
from cockpit.remote.runs import pid_alive
from remote_support import SAMPLE, wait_for

BASE = ["--set", "run.max_iters=3", "--set", "eval.every_epochs=0", "--set", "data.num_workers=0"]


def kill_started(out: str) -> None:
    found = re.search(r"pid (\d+);", out)
    if found and pid_alive(int(found.group(1))):
        os.kill(int(found.group(1)), signal.SIGKILL)
        wait_for(lambda: not pid_alive(int(found.group(1))), timeout=10)


def test_a_run_that_dies_before_training_is_reported_failed_with_its_reason(tmp_path, capsys):
    # A file that exists but cannot be parsed: a missing one is refused before spawning
    # (one line, exit 1: `cockpit run` checks the data paths even under --no-check).
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    code = main(["run", str(SAMPLE / "shapes.toml"), "--detach", "--no-check", *BASE,
                 "--set", f"run.output_dir='{tmp_path}'", "--set", f"data.train='{bad}'"])
    captured = capsys.readouterr()
    kill_started(captured.out)
    err = captured.err.strip().splitlines()
    assert code == 1 and len(err) == 1, captured
    assert "the run failed before training" in err[0] and "bad.json" in err[0]
    assert "attach:" not in captured.out


def test_detach_from_a_folder_holding_a_cockpit_dir_imports_the_real_package(tmp_path, capsys, monkeypatch):
    shadow = tmp_path / "cockpit"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the wrong cockpit package')\n")
    out_dir = tmp_path / "runs dir's"  # a space and a quote: the attach line must survive a shell
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(SAMPLE / "shapes.toml"), "--detach", "--no-check", *BASE,
                 "--set", f"run.output_dir=\"{out_dir}\""])
    captured = capsys.readouterr()
    try:
        assert code == 0, captured
        assert "training started" in captured.out
        [line] = [line for line in captured.out.splitlines() if line.startswith("attach: ")]
        words = shlex.split(line[len("attach: "):])
        assert words[:2] == ["cockpit", "attach"] and len(words) == 3
        assert os.path.isdir(words[2]) and os.path.dirname(words[2]) == str(out_dir)
    finally:
        kill_started(captured.out)
