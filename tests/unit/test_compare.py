"""`cockpit compare`: fixture run directories -> compare.html + compare.md with PNGs."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from report_fixtures import make_damaged_run, make_finished_run, make_flagged_run

from cockpit.report import compare_analysis as ca
from cockpit.report.compare import BEST, CompareError, build_comparison
from cockpit.report.rundir import read_run_dir


def _set_lr(run_dir: Path, lr: float) -> None:
    path = run_dir / "config.toml"
    path.write_text(re.sub(r"(?m)^lr = .*$", f"lr = {lr}", path.read_text()))


def _set_dataset(run_dir: Path, train_hash: str, train_images: int = 40) -> None:
    """Put a dataset fingerprint in the run's run_started event (as the engine records it)."""
    path = run_dir / "events.jsonl"
    lines = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("kind") == "run_started":
            event["dataset"] = {
                "format": "coco", "classes": ["circle", "square"],
                "train": {"source": "data/val.json", "images": train_images, "sha256": train_hash},
                "val": {"source": "data/val.json", "images": 2, "sha256": "v" * 64},
            }
        lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def two_runs(tmp_path):
    first = make_finished_run(tmp_path / "a")
    second = make_flagged_run(tmp_path / "b")
    _set_lr(second, 0.02)
    return first, second


def _html_sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', html, flags=re.S))


def test_compare_writes_html_and_markdown_with_curves_table_and_config_difference(two_runs, tmp_path):
    first, second = two_runs
    paths = build_comparison([first, second], tmp_path / "out")
    html = paths.html.read_text()
    sections = _html_sections(html)
    assert set(sections) == {"runs", "table", "curves", "config", "data", "interventions"}
    # Self-contained: every image inline, nothing fetched; run text (a flag's evidence) escaped.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script>" not in html and "&lt;script&gt;alert" in sections["interventions"]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', sections["curves"])
    assert len(images) >= 3  # losses, evaluation, other
    for data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"
    # The only config difference a person changed: optim.lr, with each run's value.
    config = sections["config"]
    assert "optim.lr" in config and "0.01" in config and "0.02" in config
    assert "run.name" in config  # demo vs flaky: also differs
    assert "optim.momentum" not in config
    markdown = paths.markdown.read_text()
    for png in re.findall(r"\]\(([^)]+\.png)\)", markdown):
        assert (paths.directory / png).is_file()
    assert "| optim.lr |" in markdown


def test_table_marks_the_best_run_per_row(two_runs):
    first, second = two_runs
    runs = [read_run_dir(first), read_run_dir(second)]
    labels = ca.run_labels(runs)
    rows = {row.label: row for row in ca.table(runs, labels)}
    # Both fixtures end at AP 0.55: a tie has no best.
    assert rows["final AP"].values == {labels[0]: "0.550", labels[1]: "0.550"} and rows["final AP"].best == []
    assert rows["final AP circle"].values[labels[0]] == "0.600"
    assert rows["iterations"].values == {labels[0]: "600", labels[1]: "600"}
    assert rows["peak memory (CUDA peak)"].values[labels[0]] == "2,240 MB"  # 2200 + (it % 50) at every 10th iteration
    # The flagged run recorded a NaN loss and a user LR: its images/s is still measured.
    assert rows["images/s (train)"].values[labels[1]] == "9.5"
    # Make one run clearly better at the end.
    runs[1].evals[-1]["eval"]["AP"] = 0.7
    rows = {row.label: row for row in ca.table(runs, labels)}
    assert rows["final AP"].best == [labels[1]]


def test_best_mark_reaches_the_documents(two_runs, tmp_path):
    first, second = two_runs
    metrics = second / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    records[-1]["eval"]["AP50"] = 0.99
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    paths = build_comparison([first, second], tmp_path / "out")
    row = next(line for line in paths.markdown.read_text().splitlines() if line.startswith("| final AP50 |"))
    assert row.endswith(f"| 0.990 {BEST} |")


def test_curves_include_assignment_signals_and_val_loss_only_when_present(two_runs, tmp_path):
    first, second = two_runs
    runs = [read_run_dir(first), read_run_dir(second)]
    keys = {curve.key: curve for curve in ca.curves(runs, ca.run_labels(runs))}
    assert {"loss", "loss_classifier", "lr", "AP50"} <= set(keys)
    assert "roi_fg_frac" not in keys and "val_loss" not in keys and "mem_peak_mb" not in keys
    # A newer engine adds them to one run: they appear, for that run only.
    runs[1].train = [{**record, "roi_fg_frac": 0.25, "fg_cls_accuracy": 0.5} for record in runs[1].train]
    runs[1].evals[-1]["val_loss"] = {"loss": 0.8, "loss_classifier": 0.3}
    labels = ca.run_labels(runs)
    keys = {curve.key: curve for curve in ca.curves(runs, labels)}
    assert keys["roi_fg_frac"].group == "assignment" and set(keys["roi_fg_frac"].series) == {labels[1]}
    assert keys["val_loss"].group == "evaluation" and keys["val_loss_classifier"].series[labels[1]] == ([600.0], [0.3])


def test_dataset_fingerprints_warn_when_the_runs_saw_different_data(two_runs):
    first, second = two_runs
    _set_dataset(first, "a" * 64)
    _set_dataset(second, "a" * 64)
    runs = [read_run_dir(first), read_run_dir(second)]
    labels = ca.run_labels(runs)
    rows, warnings = ca.data_comparison(runs, labels)
    assert warnings == [] and len(rows) == 4
    _set_dataset(second, "b" * 64, train_images=41)
    runs = [read_run_dir(first), read_run_dir(second)]
    rows, warnings = ca.data_comparison(runs, labels)
    assert len(warnings) == 1 and "same train data" in warnings[0] and "41 images" in warnings[0]


def test_interventions_list_lr_changes_pauses_rewinds_ooms_and_flags(two_runs):
    _, second = two_runs
    categories = [row.category for row in ca.interventions(read_run_dir(second))]
    for wanted in ("lr-user", "lr-recovery", "pause", "resume", "nan-rewind", "oom-retry", "flag", "finish"):
        assert wanted in categories
    assert "eval" not in categories and "checkpoint" not in categories


def test_a_run_and_its_damaged_copy_compare_saying_what_is_missing(tmp_path):
    whole = make_finished_run(tmp_path / "a")
    damaged = make_damaged_run(tmp_path / "b")
    paths = build_comparison([whole, damaged], tmp_path / "out")
    sections = _html_sections(paths.html.read_text())
    runs = sections["runs"]
    assert "events.jsonl is missing" in runs and "truncated" in runs
    assert "not recorded" in sections["data"]
    assert "events.jsonl is missing: no timeline" in sections["interventions"]
    # The damaged run has no evaluation: n/a in its column, and the other run is not "best" alone by default.
    row = next(line for line in paths.markdown.read_text().splitlines() if line.startswith("| final AP |"))
    assert row.endswith("| n/a |")


def test_same_named_runs_get_told_apart(tmp_path):
    whole = make_finished_run(tmp_path / "a")
    copy = tmp_path / "copies" / whole.name
    shutil.copytree(whole, copy)
    labels = ca.run_labels([read_run_dir(whole), read_run_dir(copy)])
    assert labels == [f"runs/{whole.name}", f"copies/{whole.name}"]


def test_compare_refuses_fewer_than_two_or_missing_folders(tmp_path):
    run = make_finished_run(tmp_path)
    with pytest.raises(CompareError, match="at least two"):
        build_comparison([run])
    with pytest.raises(CompareError, match="no such run directory"):
        build_comparison([run, tmp_path / "nope"])
