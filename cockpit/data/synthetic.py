"""Writes the bundled synthetic dataset: circles and squares on textured backgrounds.

Deterministic (fixed seed): running it again rewrites byte-identical files. Run it from
anywhere: ``python sample_data/generate.py`` (or ``cockpit init`` writes a copy next to a new config). Output, next to this script::

    shapes/train/PNGImages/shapes_train_000.png ...   images (shared by both formats)
    shapes/train/PedMasks/shapes_train_000_mask.png   instance masks (0 = background)
    shapes/train.json, shapes/val.json                COCO: categories circle (id 3),
                                                      square (id 7) -- non-contiguous
                                                      on purpose, to exercise mapping
    shapes/val/...                                    the same for the validation split

The masks layout is the Penn-Fudan one with a single class ("shape"); the COCO files are
multi-class. The two formats describe the same images, so the masks layout doubles as
a second ground truth (class-agnostic) for the COCO one.

Objects are large (22-64 px on ~160 px images) and high-contrast, so the ``tiny`` model
learns them on a CPU within minutes; about one image in eight has no object at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20240601
SPLITS = {"train": 120, "val": 30}
CATEGORIES = [{"id": 3, "name": "circle", "supercategory": "shape"}, {"id": 7, "name": "square", "supercategory": "shape"}]
OUT = Path(__file__).resolve().parents[2] / "sample_data" / "shapes"


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A muted gradient plus blocky noise: textured, yet small as PNG."""
    base = rng.uniform(70, 150, size=3)
    tilt = rng.uniform(-40, 40, size=(2, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    img = base + (yy[..., None] / h) * tilt[0] + (xx[..., None] / w) * tilt[1]
    # 8x8-pixel blocks of noise: texture for the backbone to ignore, cheap to compress.
    block = 8
    noise = rng.normal(0, 10, size=(h // block + 1, w // block + 1, 1))
    noise = np.kron(noise, np.ones((block, block, 1)))[:h, :w]
    return np.clip(img + noise, 0, 255)


def object_colour(rng: np.random.Generator, bg_mean: float) -> np.ndarray:
    """A saturated colour far from the background's brightness, so every object stands out."""
    colour = rng.uniform(0, 255, size=3)
    colour[rng.integers(3)] = rng.uniform(0, 40) if bg_mean > 110 else rng.uniform(215, 255)
    shift = -80 if bg_mean > 110 else 80
    return np.clip(colour + shift, 0, 255)


def overlaps(box, boxes, gap: int = 4) -> bool:
    x1, y1, x2, y2 = box
    return any(x1 < bx2 + gap and bx1 < x2 + gap and y1 < by2 + gap and by1 < y2 + gap for bx1, by1, bx2, by2 in boxes)


def make_image(rng: np.random.Generator):
    h, w = (int(v) for v in rng.integers(144, 177, size=2))
    img = background(rng, h, w)
    mask = np.zeros((h, w), dtype=np.uint8)
    n_objects = 0 if rng.random() < 0.12 else int(rng.integers(1, 5))
    objects, boxes = [], []
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(n_objects):
        for _attempt in range(30):
            size = int(rng.integers(22, 65))
            x1, y1 = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
            box = (x1, y1, x1 + size, y1 + size)
            if not overlaps(box, boxes):
                break
        else:
            continue
        kind = "circle" if rng.random() < 0.5 else "square"
        if kind == "circle":
            r = size / 2
            cx, cy = x1 + r - 0.5, y1 + r - 0.5
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        else:
            inside = (xx >= x1) & (xx < x1 + size) & (yy >= y1) & (yy < y1 + size)
        img[inside] = object_colour(rng, float(img[inside].mean()))
        mask[inside] = len(objects) + 1
        boxes.append(box)
        objects.append(kind)
    return img.astype(np.uint8), mask, objects


def write_split(split: str, count: int, rng: np.random.Generator, out: Path = OUT) -> None:
    OUT = out
    image_dir, mask_dir = OUT / split / "PNGImages", OUT / split / "PedMasks"
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    cat_ids = {c["name"]: c["id"] for c in CATEGORIES}
    images, annotations = [], []
    for i in range(count):
        img, mask, kinds = make_image(rng)
        stem = f"shapes_{split}_{i:03d}"
        Image.fromarray(img).save(image_dir / f"{stem}.png", optimize=True)
        Image.fromarray(mask, mode="L").save(mask_dir / f"{stem}_mask.png", optimize=True)
        image_id = i + 1
        images.append({"id": image_id, "file_name": f"{stem}.png", "width": img.shape[1], "height": img.shape[0]})
        for obj_id, kind in enumerate(kinds, start=1):
            ys, xs = np.nonzero(mask == obj_id)
            x, y = int(xs.min()), int(ys.min())
            # COCO boxes cover whole pixels: width = last column - first column + 1.
            bw, bh = int(xs.max()) - x + 1, int(ys.max()) - y + 1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat_ids[kind],
                    "bbox": [x, y, bw, bh],
                    "area": int(xs.size),
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": f"cockpit synthetic shapes, {split} split", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    (OUT / f"{split}.json").write_text(json.dumps(coco, indent=1) + "\n")


def generate(out: Path = OUT, splits: dict[str, int] | None = None) -> Path:
    """Write the shapes dataset under ``out`` (deterministic); returns ``out``."""
    rng = np.random.default_rng(SEED)
    for split, count in (splits or SPLITS).items():
        write_split(split, count, rng, out)
    return out


def main() -> None:
    generate()
    print(f"wrote {sum(SPLITS.values())} images to {OUT}")


if __name__ == "__main__":
    main()
