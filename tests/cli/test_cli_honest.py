"""What `cockpit` prints is true and short: exit lines, loss names, --set origins, one-line
data errors, one exit-code rule, run folders found again, ordinary file permissions (#17)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

from support import REPO, SAMPLE


def cockpit(*args: str, cwd=REPO, env=None, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_short_headless_run_says_where_it_is_and_is_found_by_ls(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir()
    out = tmp_path / "project" / "runs-here"
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    config = SAMPLE / "shapes.toml"
    result = cockpit(
        "run", str(config), "--headless", "--no-check",
        "--set", f"run.output_dir='{out}'", "--set", "run.max_iters=4", "--set", "run.log_every=2",
        "--set", "eval.every_epochs=0", env=env,
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = list(out.iterdir())
    lines = result.stdout.splitlines()
    step = next(line for line in lines if line.startswith("it 2/4"))
    for name in ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"):
        assert name in step  # torchvision's names in the log, never "rpn" alone
    terms = f" {step[step.index('(') + 1:step.index(')')]} "  # the loss terms (the line may go on with other rpn numbers)
    assert " rpn " not in terms and " obj " not in terms
    tail = "\n".join(lines[-5:])
    assert f"run dir:    {run_dir} (finished at iteration 4)" in tail
    assert f"checkpoint: {run_dir}/checkpoints/last.pt (iteration 4)" in tail
    assert re.search(r"best AP50:  \d\.\d{3}, AP \d\.\d{3} \(iteration 4\)", tail)
    assert f"cockpit report {run_dir}" in tail
    # The resume command repeats this command's --set values (sorted), so it continues the same run.
    assert (f"cockpit run {config} --set eval.every_epochs=0 --set run.log_every=2 --set run.max_iters=4 "
            f"--set 'run.output_dir=\"{out}\"' --resume {run_dir}") in tail

    # `cockpit ls` from another folder (no ./runs there) finds the run just made.
    listing = cockpit("ls", cwd=tmp_path, env=env)
    assert listing.returncode == 0 and str(run_dir) in listing.stdout and "finished" in listing.stdout

    # Every file in the run directory, report included, gets the ordinary mode of the umask.
    report = cockpit("report", str(run_dir), env=env)
    assert report.returncode == 0, report.stderr
    # The previews are the checkpoint's own predictions, several val images with objects,
    # each captioned with the checkpoint and its iteration (not whatever was browsed last).
    markdown = (run_dir / "report" / "report.md").read_text()
    captions = [line for line in markdown.splitlines() if line.startswith("![") and "preview-" in line]
    assert len(captions) >= 3, markdown[-2000:]
    for caption in captions:
        assert re.search(r"predicted by checkpoints/(best|last)\.pt \(iteration 4\)", caption), caption
        assert re.search(r"[1-9]\d* ground-truth box", caption), caption
    umask = os.umask(0o022)
    os.umask(umask)
    for path in run_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        if path.is_socket():
            continue
        assert mode == expected, f"{path}: {oct(mode)}"


def test_ls_says_where_it_looked_when_it_finds_nothing(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir()
    result = cockpit("ls", cwd=tmp_path, env={"XDG_RUNTIME_DIR": str(runtime)})
    assert result.returncode == 0
    assert "./runs" in result.stdout and "cockpit ls OUTPUT_DIR" in result.stdout


def test_a_bad_set_value_names_the_set_not_a_file_line():
    result = cockpit("check", str(SAMPLE / "shapes.toml"), "--set", "optim.lr=abc")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("--set optim.lr=abc: optim.lr:") and "shapes.toml" not in line


def test_a_missing_annotation_file_under_no_check_is_one_line_exit_1(tmp_path):
    result = cockpit(
        "run", str(SAMPLE / "shapes.toml"), "--headless", "--no-check",
        "--set", "data.train='shapes/nope.json'", "--set", f"run.output_dir='{tmp_path}'",
    )
    assert result.returncode == 1
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "data.train" in line and "nope.json" in line
    assert not list(tmp_path.iterdir())  # no run folder left behind


def test_readme_states_the_exit_codes_the_cli_uses():
    readme = (REPO / "README.md").read_text()
    assert "Exit codes" in readme
    section = readme[readme.index("Exit codes"):][:1200]
    for code, words in (("0", "finished"), ("1", "pre-flight"), ("2", "config")):
        assert re.search(rf"`{code}`[^\n]*{words}", section), (code, words)
    assert cockpit("check", str(SAMPLE / "missing.toml")).returncode == 2  # a config that is not there


def test_preview_fits_the_terminal_height(tmp_path):
    for columns, rows in ((120, 40), (80, 24)):
        result = cockpit("preview", str(SAMPLE / "shapes.toml"), "--split", "val",
                         env={"COLUMNS": str(columns), "LINES": str(rows)})
        assert result.returncode == 0, result.stderr
        used = sum(max(1, -(-len(line) // columns)) for line in result.stdout.splitlines())
        assert used <= rows - 1, (columns, rows, used)


def test_the_detach_message_says_what_is_true_of_the_run():
    from cockpit.cli import detach_message

    assert "stays paused" in detach_message("runs/r", "PAUSED") and "goes on" not in detach_message("runs/r", "PAUSED")
    assert "the run goes on" in detach_message("runs/r", "RUNNING")


def test_exit_lines_without_checkpoint_or_eval_say_so(tmp_path):
    from cockpit.exit_summary import exit_lines

    (tmp_path / "events.jsonl").write_text('{"kind": "finished", "outcome": "stopped", "iter": 3}\n{"kind": "chec')
    lines = exit_lines(tmp_path, None)
    assert lines[0] == f"run dir:    {tmp_path} (stopped at iteration 3)"
    assert "checkpoint: none written" in lines and "best AP50:  no evaluation yet" in lines
    assert not any(line.startswith("resume:") for line in lines)  # nothing to resume from


def test_the_resume_command_carries_the_edits_made_in_the_cockpit(tmp_path):
    from cockpit.exit_summary import exit_lines

    (tmp_path / "events.jsonl").write_text(
        '{"kind": "checkpoint", "iter": 60, "path": "ck/last.pt"}\n{"kind": "finished", "outcome": "stopped", "iter": 61}\n'
    )
    lines = exit_lines(tmp_path, SAMPLE / "shapes.toml", {"data.batch_size": 2, "run.name": "my run"})
    resume = next(line for line in lines if line.startswith("resume:"))
    assert resume == (f"resume:     cockpit run {SAMPLE / 'shapes.toml'} --set data.batch_size=2 "
                      f"--set 'run.name=\"my run\"' --resume {tmp_path}")


def test_a_run_that_fails_at_start_says_why_once_with_the_traceback_only_in_the_log(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    out = tmp_path / "runs"
    result = cockpit(
        "run", str(SAMPLE / "shapes.toml"), "--headless", "--no-check",
        "--set", f"data.train='{bad}'", "--set", f"run.output_dir='{out}'",
    )
    assert result.returncode == 1
    both = result.stdout + result.stderr
    assert "Traceback" not in both and both.count("is not valid JSON") == 1
    assert result.stderr.strip().startswith("cockpit: run failed: DatasetError:")
    (run_dir,) = list(out.iterdir())
    log = (run_dir / "cockpit.log").read_text()
    assert "Traceback" in log and "is not valid JSON" in log  # the record keeps the detail
