"""End-to-end report tests: fixture run directories -> report.html, report.md, metrics.csv."""

from __future__ import annotations

import base64
import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from report_fixtures import EVIL, make_damaged_run, make_finished_run, make_flagged_run, make_long_metrics

from cockpit.diagnostics.catalog import ALL_RULES
from cockpit.report import ReportPaths, build_report
from cockpit.report.rundir import LOSS_KEYS

SECTION_IDS = ("summary", "config", "plots", "evaluation", "checklist", "preflight", "timeline", "previews", "environment")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
NETWORK = re.compile(r"https?://|(?:src|href|action|srcset)\s*=\s*[\"']?//|url\(\s*[\"']?(?!data:)|@import", re.I)


class _Checker(HTMLParser):
    """Collects tags, ids, img sources and text; fails on unbalanced tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if "id" in values:
            self.ids.add(values["id"] or "")
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "a":
            self.hrefs.append(values.get("href") or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.errors == []
    assert checker.stack == [], f"unclosed tags: {checker.stack}"
    return checker


def _check_self_contained(html: str) -> None:
    assert not NETWORK.search(html), NETWORK.search(html)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportPaths]:
    run_dir = make_finished_run(tmp_path_factory.mktemp("finished"), telemetry=True)
    return run_dir, build_report(run_dir)


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportPaths]:
    run_dir = make_flagged_run(tmp_path_factory.mktemp("flagged"))
    return run_dir, build_report(run_dir)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportPaths]:
    run_dir = make_damaged_run(tmp_path_factory.mktemp("damaged"))
    return run_dir, build_report(run_dir)


def test_default_output_folder_and_files(finished: tuple[Path, ReportPaths]) -> None:
    run_dir, paths = finished
    assert paths.directory == run_dir.resolve() / "report"
    assert paths.html == paths.directory / "report.html"
    assert paths.markdown.name == "report.md" and paths.csv.name == "metrics.csv"
    for path in (paths.html, paths.markdown, paths.csv):
        assert path.is_file() and path.stat().st_size > 0


def test_html_parses_has_every_section_and_is_self_contained(finished: tuple[Path, ReportPaths]) -> None:
    html = finished[1].html.read_text(encoding="utf-8")
    checker = _parse(html)
    assert set(SECTION_IDS) <= checker.ids
    assert all(href.startswith("#") for href in checker.hrefs)
    assert {"style", "table", "figure"} <= set(checker.tags)
    _check_self_contained(html)
    assert "@media print" in html


def test_plots_are_embedded_pngs_that_decode(finished: tuple[Path, ReportPaths]) -> None:
    checker = _parse(finished[1].html.read_text(encoding="utf-8"))
    # losses, lr, memory, ap, preflight histograms, one engine preview
    assert len(checker.images) >= 6
    for src in checker.images:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        image.verify()
        assert image.format == "PNG"


def test_summary_evaluation_environment_and_resume(finished: tuple[Path, ReportPaths]) -> None:
    run_dir, paths = finished
    text = " ".join(_parse(paths.html.read_text(encoding="utf-8")).text)
    assert "finished -- all epochs done" in text
    assert "600 of 600 planned" in text
    assert "NVIDIA H100 80GB HBM3" in text
    assert "AP 0.550 / AP50 0.800 (iteration 600)" in text
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"):
        assert key in text
    assert "Per-class AP at the best evaluation (iteration 600)" in text
    assert "circle" in text and "0.600" in text
    assert "optim.warmup_iters" in text  # a difference from the defaults
    folder = str(run_dir.resolve())
    assert f"cockpit run {folder}/config.toml --resume {folder}" in text
    assert "torchvision" in text and "0.20.0" in text


def test_checklist_lists_every_catalog_rule(finished: tuple[Path, ReportPaths]) -> None:
    text = " ".join(_parse(finished[1].html.read_text(encoding="utf-8")).text)
    for rule in ALL_RULES:
        assert f"({rule.id})" in text
    assert "1 of 40 images has no boxes" in text  # the pre-flight flag


def test_markdown_and_its_pngs(finished: tuple[Path, ReportPaths]) -> None:
    paths = finished[1]
    markdown = paths.markdown.read_text(encoding="utf-8")
    for title in ("## Summary", "## Training curves", "## Evaluation", "## Debugging checklist", "## Event timeline", "## Validation previews"):
        assert title in markdown
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert {"losses.png", "lr.png", "memory.png", "ap.png", "labels.png"} <= set(pictures)
    for name in pictures:
        with Image.open(paths.directory / name) as image:
            assert image.format == "PNG"
    assert not re.search(r"https?://", markdown)


def test_metrics_csv_has_every_loss_column(finished: tuple[Path, ReportPaths]) -> None:
    with finished[1].csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = rows[0].keys()
    for key in (*LOSS_KEYS, "iter", "epoch", "lr", "rss_mb", "mem_peak_mb", "eval_AP", "eval_AP50"):
        assert key in columns
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert len(train) == 60 and len(evals) == 2
    assert float(train[0]["loss_objectness"]) > 0
    assert [int(r["iter"]) for r in rows] == sorted(int(r["iter"]) for r in rows)


def test_flagged_run_shows_flags_user_lr_and_timeline(flagged: tuple[Path, ReportPaths]) -> None:
    html = flagged[1].html.read_text(encoding="utf-8")
    checker = _parse(html)
    text = " ".join(checker.text)
    assert "stopped -- stopped by the user" in text
    # Each flag: when, evidence, fix.
    assert "iteration 250" in text and "lower optim.lr (e.g. 0.005) or set optim.grad_clip = 10" in text
    assert "0 detections above 0.5 on 2 val images" in text and "0.0-0.1: 40" in text
    # nonfinite_loss recovered: its final state is OK, and no_val_detections stays FLAGGED.
    assert re.search(r"Loss is NaN / Inf \(nonfinite_loss\)</td><td>live</td><td>OK</td>", html)
    assert re.search(r"\(no_val_detections\)</td><td>live</td><td>FLAGGED</td>", html)
    # Timeline: pauses, user/schedule/recovery LR changes, skipped samples, OOM retries, NaN rewinds.
    for piece in ("RUNNING -> PAUSED: user pause", "LR 0.01 -> 0.02 (user)", "LR 0.02 -> 0.001 (user)",
                  "lr-schedule x30", "skipped-sample x2", "CUDA OOM at batch 2", "nan-rewind", "lr-recovery",
                  "2 LR changes by the user", "1 NaN rewinds", "1 OOM retries"):
        assert piece in text, piece


def test_flagged_run_escapes_user_text(flagged: tuple[Path, ReportPaths]) -> None:
    paths = flagged[1]
    html = paths.html.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in html
    assert EVIL in " ".join(_parse(html).text)  # shown literally to the reader
    _check_self_contained(html)
    assert "<script>" not in paths.markdown.read_text(encoding="utf-8")


def test_flagged_run_draws_previews_from_predictions(flagged: tuple[Path, ReportPaths]) -> None:
    paths = flagged[1]
    checker = _parse(paths.html.read_text(encoding="utf-8"))
    text = " ".join(checker.text)
    assert "drawn from predictions/eval-iter000600.json" in text
    preview = Image.open(paths.directory / "preview-1.png").convert("RGB")
    colors = {color for _count, color in preview.getcolors(maxcolors=1 << 20)}
    assert (20, 170, 60) in colors and (220, 40, 40) in colors  # GT green and prediction red
    assert "LR changes by the user" in text


def test_damaged_run_renders_and_says_what_is_missing(damaged: tuple[Path, ReportPaths]) -> None:
    paths = damaged[1]
    html = paths.html.read_text(encoding="utf-8")
    checker = _parse(html)
    assert set(SECTION_IDS) <= checker.ids
    _check_self_contained(html)
    text = " ".join(checker.text)
    assert "events.jsonl is missing" in text
    assert "unknown -- events.jsonl is missing" in text  # status
    assert "No evaluation yet" in text
    assert "No checkpoint (checkpoints/last.pt)" in text
    assert "preflight.json is missing" in text
    assert "the last line is truncated" in text
    assert "No previews" in text
    assert "This section could not be built" not in text
    assert 'class="missing"' in html
    # The readable records are still plotted.
    assert any(src.startswith("data:image/png;base64,") for src in checker.images)
    with paths.csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and all(k in rows[0] for k in LOSS_KEYS)
    assert "No evaluation yet" in paths.markdown.read_text(encoding="utf-8")


def test_run_without_config_or_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty-run"
    run_dir.mkdir()
    paths = build_report(run_dir, tmp_path / "out")
    assert paths.directory == tmp_path / "out"
    html = paths.html.read_text(encoding="utf-8")
    text = " ".join(_parse(html).text)
    assert "config.toml is missing" in text
    assert "metrics.jsonl is missing" in text
    assert "No training records: no loss plot." in text
    assert "This section could not be built" not in text
    with paths.csv.open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert all(k in header for k in LOSS_KEYS)


def test_invalid_config_falls_back_to_run_started(tmp_path: Path) -> None:
    run_dir = make_finished_run(tmp_path)
    (run_dir / "config.toml").write_text("[run\nbroken = ", encoding="utf-8")
    text = " ".join(_parse(build_report(run_dir).html.read_text(encoding="utf-8")).text)
    assert "config.toml does not validate" in text
    assert "optim.warmup_iters" in text  # differences still shown, from the run_started event


def test_not_a_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope")


def test_long_history_is_decimated_in_the_plots(tmp_path: Path) -> None:
    run_dir = make_finished_run(tmp_path)
    make_long_metrics(run_dir, 5000)
    paths = build_report(run_dir)
    text = " ".join(_parse(paths.html.read_text(encoding="utf-8")).text)
    assert "5000 training records, drawn as at most 2000 points per series" in text
    with paths.csv.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["kind"] == "train"]
    assert len(rows) == 5000
    assert any(r["loss"] == "nan" for r in rows)  # the NaN is kept, not blanked


def test_a_deleted_val_image_is_skipped_and_named_in_the_previews(tmp_path: Path) -> None:
    run_dir = make_flagged_run(tmp_path)
    (tmp_path / "data" / "images" / "img0.png").unlink()
    paths = build_report(run_dir)
    text = " ".join(_parse(paths.html.read_text(encoding="utf-8")).text)
    assert "drawn from predictions/" in text
    assert "skipped 1 unreadable image(s): img0.png" in text


def test_validation_loss_and_loss_names_are_reported(finished: tuple[Path, ReportPaths]) -> None:
    _run_dir, paths = finished
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "Validation loss at each evaluation" in markdown
    assert "loss\\_box\\_reg is smooth L1" in markdown or "loss_box_reg is smooth L1" in markdown
    assert "Label assignment per logged step" in markdown
