"""`cockpit check` / `cockpit run` on partly bad data (#14.10, #17.12): a few unreadable
images warn (exit 0, or 1 with --strict) and are left out of training; most of a split
unreadable, or an empty training set, is refused with one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from support import REPO, SAMPLE

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def cockpit(*args: str, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def copy_sample(tmp_path):
    data = tmp_path / "sample"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("runs"))
    return data


def test_a_few_unreadable_images_warn_are_excluded_and_listed(tmp_path):
    data = copy_sample(tmp_path)
    images = sorted((data / "shapes" / "train" / "PNGImages").iterdir())
    images[0].unlink()
    images[1].write_bytes(images[1].read_bytes()[:40])  # truncated
    config = str(data / "shapes.toml")
    check = cockpit("check", config)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "WARN" in check.stdout and images[0].name in check.stdout
    strict = cockpit("check", config, "--strict")
    assert strict.returncode == 1 and "--strict" in strict.stdout

    out = tmp_path / "runs"
    run = cockpit("run", config, "--headless", "--set", f"run.output_dir='{out}'", "--set", "run.max_iters=3",
                  "--set", "eval.every_epochs=0", "--set", "data.val=''")
    assert run.returncode == 0, run.stdout + run.stderr
    [run_dir] = list(out.iterdir())
    preflight = json.loads((run_dir / "preflight.json").read_text())
    [verdict] = [v for v in preflight["verdicts"] if v["rule"] == "unreadable_images" and v["split"] == "train"]
    assert verdict["severity"] == "warning"
    listed = {os.path.basename(p) for p in verdict["data"]["paths"]}
    assert images[0].name in listed
    # Left out of training: the loader never tries (and never warns about) the missing file.
    assert not [line for line in run.stdout.splitlines() if "skipped unreadable sample" in line and images[0].name in line]
    assert "excluded" in verdict["data"] and verdict["data"]["excluded"]


def test_most_of_a_split_unreadable_is_an_error(tmp_path):
    data = copy_sample(tmp_path)
    images = sorted((data / "shapes" / "val" / "PNGImages").iterdir())
    for image in images[: len(images) * 2 // 3]:
        image.unlink()
    check = cockpit("check", str(data / "shapes.toml"))
    assert check.returncode == 1
    assert "most of the split" in check.stdout


def test_empty_training_set_under_no_check_refuses_to_train(tmp_path):
    data = copy_sample(tmp_path)
    ann = json.loads((data / "shapes" / "train.json").read_text())
    ann["images"], ann["annotations"] = [], []
    (data / "shapes" / "train.json").write_text(json.dumps(ann))
    out = tmp_path / "runs"
    run = cockpit("run", str(data / "shapes.toml"), "--headless", "--no-check", "--set", f"run.output_dir='{out}'")
    assert run.returncode == 1
    assert "has no images; nothing to train on" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    [run_dir] = list(out.iterdir())
    assert not list((run_dir / "checkpoints").iterdir()), "nothing trained, nothing checkpointed"
