"""A COCO dataset of 3-4 px squares on 160 px images: objects no anchor of the tiny model matches.

``python tests/engine/tiny_objects.py OUT_DIR`` writes it with a config (``tiny.toml``)
next to it; the tests call :func:`write_tiny_objects`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def write_tiny_objects(out: Path, images: int = 12, seed: int = 3) -> Path:
    """Writes ``train.json`` / ``val.json`` and their PNGs under ``out``; returns the config path."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    for split, count in (("train", images), ("val", max(2, images // 4))):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "dot"}]}
        for index in range(count):
            pixels = np.full((160, 160, 3), 90, dtype=np.uint8)
            for _ in range(int(rng.integers(2, 6))):
                side = int(rng.integers(3, 5))
                x, y = (int(v) for v in rng.integers(4, 150, size=2))
                pixels[y : y + side, x : x + side] = (250, 250, 40)
                coco["annotations"].append(
                    {"id": len(coco["annotations"]) + 1, "image_id": index + 1, "category_id": 1,
                     "bbox": [x, y, side, side], "area": side * side, "iscrowd": 0}
                )
            name = f"{split}_{index:03d}.png"
            Image.fromarray(pixels).save(folder / name)
            coco["images"].append({"id": index + 1, "file_name": name, "width": 160, "height": 160})
        (out / f"{split}.json").write_text(json.dumps(coco), encoding="utf-8")
    config = out / "tiny.toml"
    config.write_text(
        '[run]\nname = "tiny-objects"\nepochs = 20\nlog_every = 5\n\n'
        '[data]\nformat = "coco"\nclasses = ["dot"]\ntrain = "train.json"\nval = "val.json"\n'
        'train_images = "train"\nval_images = "val"\nbatch_size = 4\nnum_workers = 0\n\n'
        '[model]\narch = "tiny"\n\n[optim]\nlr = 0.02\nwarmup_iters = 5\nstep_size = 100\n\n[eval]\nevery_epochs = 0\n',
        encoding="utf-8",
    )
    return config


if __name__ == "__main__":
    print(write_tiny_objects(Path(sys.argv[1])))
