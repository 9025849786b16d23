"""The `cockpit` command as a user runs it: help without torch, clear config errors, a
headless run producing the run directory, SIGTERM saving a checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from support import REPO, SAMPLE

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def cockpit(*args: str, cwd=REPO, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def test_help_does_not_import_torch_or_textual():
    code = "import sys; from cockpit.cli import build_parser; build_parser().format_help(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'textual', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert cockpit("--help").returncode == 0


def test_engine_config_data_diagnostics_never_import_textual_or_rich():
    code = (
        "import sys, cockpit.engine.trainer, cockpit.config, cockpit.data.loader, cockpit.diagnostics.hook, "
        "cockpit.diagnostics.preflight; print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'rich'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_config_gets_a_clear_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nepochz = 3\n\n[model]\narch = "resnet"\n')
    result = cockpit("check", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "line 2: run.epochz: unknown key (did you mean 'epochs'?)" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[run\n")
    result = cockpit("check", str(broken))
    assert result.returncode == 2 and "line 1" in result.stderr and "invalid TOML" in result.stderr
    result = cockpit("check", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "file not found" in result.stderr


def test_a_non_finite_or_absurd_lr_fails_check_with_one_line(tmp_path):
    for value, reason in (("inf", "finite number"), ("1e300", "less than or equal to 10")):
        result = cockpit("check", str(SAMPLE / "shapes.toml"), "--set", f"optim.lr={value}")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert "optim.lr" in result.stderr and reason in result.stderr


def test_bundled_configs_pass_check():
    for name in ("shapes.toml", "shapes_masks.toml"):
        result = cockpit("check", str(SAMPLE / name))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 warning(s)" in result.stdout


def test_headless_run_writes_the_run_directory(tmp_path):
    result = cockpit(
        "run", str(SAMPLE / "shapes.toml"), "--headless", "--no-check",
        "--set", f"run.output_dir='{tmp_path}'", "--set", "run.max_iters=4", "--set", "run.log_every=2",
        "--set", "eval.every_epochs=0",
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout, "no ANSI codes when stdout is not a terminal"
    (run_dir,) = list(tmp_path.iterdir())
    assert (run_dir / "config.toml").is_file() and (run_dir / "events.jsonl").is_file()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["iter"] for r in train] == [2, 4]
    for key in ("loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "lr", "time", "data_time"):
        assert key in train[0]
    assert [r for r in records if r["kind"] == "eval"][0]["eval"]["AP50"] >= 0.0
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert "it 4/4" in result.stdout and "run finished" in result.stdout


def test_sigterm_saves_a_checkpoint_and_exits_zero(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "run", str(SAMPLE / "shapes.toml"), "--headless", "--no-check",
         "--set", f"run.output_dir='{tmp_path}'", "--set", "run.log_every=1", "--set", "eval.every_epochs=0"],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in process.stdout:
            if line.startswith("it "):
                break
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "SIGTERM received" in out and "run stopped" in out
    (run_dir,) = list(tmp_path.iterdir())
    assert (run_dir / "checkpoints" / "last.pt").is_file()
