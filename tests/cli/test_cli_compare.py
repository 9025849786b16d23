"""`cockpit compare`, `cockpit export --tensorboard` and `cockpit ls -q` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys

from unit.report_fixtures import make_damaged_run, make_finished_run
from support import REPO

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}


def cockpit(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300)


def test_ls_quiet_feeds_compare_and_compare_writes_both_documents(tmp_path):
    make_finished_run(tmp_path / "a")
    damaged = make_damaged_run(tmp_path / "a")
    listed = cockpit("ls", "-q", str(tmp_path / "a" / "runs"))
    assert listed.returncode == 0, listed.stderr
    dirs = listed.stdout.split()
    assert len(dirs) == 2 and str(damaged) in dirs
    result = cockpit("compare", *dirs, "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "compare.html").is_file() and (tmp_path / "out" / "compare.md").is_file()
    assert f"compare: {tmp_path / 'out' / 'compare.html'}" in result.stdout


def test_compare_and_export_refuse_bad_input_in_one_line(tmp_path):
    run = make_finished_run(tmp_path)
    for args in (("compare", str(run)), ("compare", str(run), str(tmp_path / "nope")),
                 ("export", str(tmp_path / "nope"), "--tensorboard", str(tmp_path / "tb"))):
        result = cockpit(*args)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_export_tensorboard_prints_where_and_how_to_view(tmp_path):
    run = make_finished_run(tmp_path)
    result = cockpit("export", str(run), "--tensorboard", str(tmp_path / "tb"))
    assert result.returncode == 0, result.stderr
    assert f"view: tensorboard --logdir {tmp_path / 'tb'}" in result.stdout
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
