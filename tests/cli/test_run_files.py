"""`cockpit ls` and `cockpit report` on damaged run files: one note line, never a traceback."""

from __future__ import annotations

import json

from cockpit.cli import main
from cockpit.engine.events import EvalResult, RunStarted, StepMetrics

MALFORMED = '{"kind":"eval","metrics":[1,2]}\n'
DEEP = "[" * 50_000 + "\n"


def make_damaged(output_dir):
    run_dir = output_dir / "demo-20260101-000000"
    run_dir.mkdir(parents=True)
    events = [
        RunStarted(run_dir=str(run_dir), config={}, environment={}, total_iters=10).to_dict(),
        StepMetrics(iter=1, epoch=0, lr=0.01, losses={}, loss=1.0, memory={"allocated_mb": 10.0}).to_dict(),
        EvalResult(iter=1, epoch=0, metrics={"AP50": 0.25}, per_class={}).to_dict(),
    ]
    text = "".join(json.dumps(e) + "\n" for e in events) + MALFORMED + DEEP
    (run_dir / "events.jsonl").write_text(text)
    return run_dir


def test_ls_lists_the_folder_and_notes_the_skipped_lines(tmp_path, capsys):
    make_damaged(tmp_path)
    healthy = tmp_path / "other-20260101-000001"
    healthy.mkdir()
    (healthy / "events.jsonl").write_text(json.dumps(RunStarted(run_dir="x", config={}, environment={}).to_dict()) + "\n")
    assert main(["ls", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "demo-20260101-000000" in out and "other-20260101-000001" in out and "0.250" in out
    assert err.strip() == "note: skipped 2 unreadable line(s) of events.jsonl in demo-20260101-000000 (2)"


def test_report_builds_and_notes_the_skipped_lines(tmp_path, capsys):
    run_dir = make_damaged(tmp_path)
    assert main(["report", str(run_dir), "-o", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "out" / "report.html").is_file()
    assert err.strip() == "note: events.jsonl: 2 unreadable line(s) skipped (line 4, 5)"
    assert "Traceback" not in out + err
