"""`cockpit check` on COCO data reads the JSON and image headers without torch, and finds
exactly what the torch dataset path finds (on the bundled sample and on a broken file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from cockpit.config import load_config
from cockpit.config.schema import Config
from cockpit.data.loader import build_dataset
from cockpit.diagnostics import preflight as pf
from cockpit.diagnostics.preflight.sources import CocoSource, open_split
from cockpit.engine.events import Progress, ProgressTask

REPO = Path(__file__).resolve().parents[2]


def findings(scan: pf.SplitScan, split: str) -> list[dict]:
    return [pf.verdict_dict(v, split) for v in scan.verdicts]


def both_paths(config: Config, split: str) -> tuple[list[dict], list[dict], object]:
    """(torch-free findings, torch dataset findings, the source the pre-flight opened)."""
    spec = pf.anchor_spec(config)
    kw = dict(split=split, num_classes=config.data.num_classes, classes=list(config.data.classes), anchors=spec)
    source = open_split(config, split)
    fast = findings(pf.scan_split(source, **kw), split)
    real = findings(pf.scan_split(build_dataset(config, split, train=False), **kw), split)
    return fast, real, source


def write_broken_coco(root: Path) -> Config:
    """Degenerate, outside and xywh-as-xyxy boxes, a missing and a corrupt image, a
    duplicate image id, an orphan annotation, a crowd box and an image without boxes."""
    images_dir = root / "images"
    images_dir.mkdir()
    images, anns = [], []
    for i in range(8):
        name = f"{i}.png"
        if i == 3:
            (images_dir / name).write_bytes(b"not a png")
        elif i != 5:
            Image.new("RGB", (96, 80), (30 * i, 90, 90)).save(images_dir / name)
        images.append({"id": i + 1, "file_name": name, "width": 96, "height": 80 if i != 6 else 70})
    images.append({"id": 2, "file_name": "again.png", "width": 96, "height": 80})
    boxes = [[10, 10, 30, 30], [40, 20, 0, 40], [120, 10, 10, 10], [5, 5, 60, 70], [10, 10, 20, 20]]
    for n, bbox in enumerate(boxes * 3):
        image_id = n % 7 + 1
        anns.append({"id": n + 1, "image_id": image_id, "category_id": 3 + 4 * (n % 2), "bbox": bbox,
                     "area": bbox[2] * bbox[3], "iscrowd": int(n == 4)})
    anns.append({"id": 99, "image_id": 42, "category_id": 3, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0})
    categories = [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}]
    (root / "broken.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    section = {"format": "coco", "classes": ["a", "b"], "train": "broken.json", "train_images": "images"}
    return Config.model_validate({"data": section, "model": {"arch": "tiny"}}).with_base_dir(root)


def test_sample_findings_match_the_torch_dataset_path():
    config = load_config(REPO / "sample_data" / "shapes.toml")
    for split in ("train", "val"):
        fast, real, source = both_paths(config, split)
        assert isinstance(source, CocoSource)
        assert fast == real
        assert source.torch_loaded  # its images open, so the sampled few went through the real pipeline


def test_broken_file_findings_match_the_torch_dataset_path(tmp_path):
    fast, real, _ = both_paths(write_broken_coco(tmp_path), "train")
    assert fast == real
    flagged = {f["rule"] for f in fast if f["state"] == "FLAGGED"}
    assert {"degenerate_boxes", "boxes_outside_image", "unreadable_images", "duplicate_image_ids",
            "orphan_annotations", "image_size_mismatch"} <= flagged


def test_open_errors_match_the_torch_dataset_path(tmp_path):
    config = write_broken_coco(tmp_path)
    wrong_classes = config.model_copy(update={"data": config.data.model_copy(update={"classes": ["a", "c"]})})
    (tmp_path / "list.json").write_text("[1, 2]")
    not_coco = config.model_copy(update={"data": config.data.model_copy(update={"train": "list.json"})})
    for bad in (wrong_classes, not_coco):
        messages = []
        for opener in (lambda: open_split(bad, "train"), lambda: build_dataset(bad, "train", train=False)):
            try:
                opener()
            except Exception as error:  # noqa: BLE001 - the two messages are compared
                messages.append(f"{type(error).__name__}: {error}")
        assert len(messages) == 2 and messages[0] == messages[1]
        assert messages[0].startswith("DatasetError")


def test_progress_counts_headers_and_annotation_bytes(tmp_path):
    config = write_broken_coco(tmp_path)
    events: list[Progress] = []
    report = pf.run_preflight(config, progress=events.append)
    assert report.splits["train"].summary["images"] == 8
    headers = [e for e in events if e.task is ProgressTask.PREFLIGHT]
    assert headers[0].done == 0 and headers[-1].done == headers[-1].total == 8
    assert headers[-1].detail == "train images"
    loads = [e for e in events if e.task is ProgressTask.ANNOTATIONS]
    assert loads[-1].done == loads[-1].total == (tmp_path / "broken.json").stat().st_size


def run_check_watching_torch(config_path: Path) -> tuple[int, bool, str]:
    code = (
        "import sys\n"
        "from cockpit.cli import main\n"
        f"rc = main(['check', {str(config_path)!r}, '--json'])\n"
        "print('TORCH', 'torch' in sys.modules, 'torchvision' in sys.modules, rc)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("TORCH")][-1].split()
    return int(line[3]), line[1] == "True" or line[2] == "True", done.stdout


def test_cockpit_check_on_coco_does_not_import_torch_for_the_scan(tmp_path):
    # Every image missing: nothing decodes, so nothing needs torch -- and the findings
    # (every image unreadable) still come out.
    config = write_broken_coco(tmp_path)
    for png in (tmp_path / "images").iterdir():
        png.unlink()
    toml = tmp_path / "check.toml"
    toml.write_text('[data]\nformat = "coco"\nclasses = ["a", "b"]\ntrain = "broken.json"\ntrain_images = "images"\n'
                    '[model]\narch = "tiny"\nweights = "none"\n')
    rc, imported, out = run_check_watching_torch(toml)
    assert rc == 1 and not imported
    report = json.loads(out[: out.rindex("TORCH")])
    unreadable = [v for v in report["verdicts"] if v["rule"] == "unreadable_images"][0]
    assert unreadable["state"] == "FLAGGED" and "8 of 8" in unreadable["evidence"]
    assert config.data.format == "coco"
