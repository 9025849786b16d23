"""Pre-flight speed: ``cockpit check`` on a generated 10,000-image, 100,000-box COCO file.

The annotation file is generated (seeded): 10,000 images of 640 x 480, ten boxes each
over two classes, with a sprinkle of the faults the check exists to find (degenerate
boxes, boxes outside the image, xywh written as xyxy). It is annotations only: the
images folder is empty, so every image is reported unreadable -- the check must still
finish quickly. The file is the train split; no val split. Timed: the whole
``cockpit check CONFIG --json`` process (interpreter start-up, torch import and config
loading included), best and median of a few runs, plus the check's own time as its
report states it (``summary.seconds``: dataset load and scan, imports excluded) and, for
scale, how long importing torch + torchvision takes on its own in a fresh interpreter
(the target: the whole check at most 0.8x that; it reads the JSON and image headers
without torch, which only the few decoded samples need), and whether torch was imported.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import common

IMAGES, BOXES = 10_000, 100_000
REPEATS = 1 if common.QUICK else 3


def generate(folder: Path) -> Path:
    rng = random.Random(0)
    images = [{"id": i, "file_name": f"img_{i:05d}.png", "width": 640, "height": 480} for i in range(1, IMAGES + 1)]
    annotations = []
    for n in range(BOXES):
        image_id = n % IMAGES + 1
        w, h = rng.uniform(8, 200), rng.uniform(8, 200)
        x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
        fault = rng.random()
        if fault < 0.001:
            w = 0.0  # degenerate
        elif fault < 0.002:
            x = 700.0  # outside the image
        elif fault < 0.003:
            w, h = x + w, y + h  # xyxy written where xywh belongs
        annotations.append(
            {"id": n + 1, "image_id": image_id, "category_id": rng.choice((3, 7)), "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
        )
    ann = folder / "big.json"
    ann.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 3, "name": "circle"}, {"id": 7, "name": "square"}]}))
    (folder / "images").mkdir()
    config = folder / "big.toml"
    config.write_text(
        "\n".join(
            [
                "[run]",
                'name = "big"',
                f'output_dir = "{folder / "runs"}"',
                "[data]",
                'format = "coco"',
                'classes = ["circle", "square"]',
                'train = "big.json"',
                'train_images = "images"',
                "[model]",
                'arch = "tiny"',
                'weights = "none"',
            ]
        )
        + "\n"
    )
    return config


def torch_import_seconds() -> float:
    """What the check pays before it starts: importing torch and torchvision's v2 transforms."""
    code = "import time; t = time.perf_counter(); import torch, torchvision.transforms.v2; print(time.perf_counter() - t)"
    done = subprocess.run([common.PYTHON, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def imports_torch(config: Path) -> bool:
    """Whether ``cockpit check`` on this file imported torch (it should not: no image decodes)."""
    code = (
        "import sys, contextlib, io\nfrom cockpit.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    main(['check', {str(config)!r}, '--json'])\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([common.PYTHON, "-c", code], cwd=common.REPO, capture_output=True, text=True)
    return done.stdout.strip().endswith("True")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        config = generate(Path(tmp))
        times, code, report = [], None, {}
        for _ in range(REPEATS):
            started = time.perf_counter()
            done = subprocess.run(common.COCKPIT + ["check", str(config), "--json"], cwd=common.REPO, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            code = done.returncode
            try:
                report = json.loads(done.stdout)
            except ValueError:
                report = {}
    common.emit(
        {
            "bench": "preflight_speed",
            "images": IMAGES,
            "boxes": BOXES,
            "seconds": min(times),
            "median_seconds": statistics.median(times),
            "exit_code": code,
            "check_seconds": report.get("summary", {}).get("seconds"),
            "torch_import_seconds": torch_import_seconds(),
            "errors_reported": report.get("summary", {}).get("error"),
            "imports_torch": imports_torch(config),
        }
    )


if __name__ == "__main__":
    main()
