"""Partly bad data (#14.7, #14.10, #14.11): 16-bit images, a few unreadable files, orphan
annotations, empty targets shaped (0,) -- each named, only the hopeless ones blocking."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cockpit.config import load_config
from cockpit.data.base import DetectionDataset, SampleInfo
from cockpit.data.images import UnsupportedImageError, open_rgb, to_rgb
from cockpit.data.loader import build_dataset
from cockpit.diagnostics import preflight as pf
from cockpit.diagnostics.preflight.policy import check_constant_images
from cockpit.diagnostics.flags import CheckState
from cockpit.engine.events import Severity
from support import SAMPLE

TINY = pf.ARCH_ANCHORS["tiny"]


def scan(dataset, **kw):
    kw.setdefault("check_files", False)
    return pf.scan_split(
        dataset, split="train", num_classes=2, classes=["a"], anchors=TINY, **kw,
    )


def by_rule(result):
    return {v.rule: v for v in result.verdicts}


# -- 16-bit images -------------------------------------------------------------------------------
def write_16bit(path, value_range=(0, 65535), size=(40, 30)):
    w, h = size
    ramp = np.linspace(value_range[0], value_range[1], w * h).reshape(h, w).astype(np.uint16)
    Image.fromarray(ramp).save(path)
    return ramp


def test_16bit_png_is_scaled_to_0_1_not_clipped_to_white(tmp_path):
    path = tmp_path / "deep.png"
    ramp = write_16bit(path)
    assert Image.open(path).mode.startswith("I;16")
    rgb = np.asarray(open_rgb(path))
    assert rgb.shape == (30, 40, 3)
    # Each pixel is its 16-bit value scaled by 65535, to the nearest 8-bit step.
    assert np.abs(rgb[..., 0].astype(float) - ramp / 65535 * 255).max() <= 0.5
    assert rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) > 100


def test_16bit_masks_dataset_trains_on_a_scaled_image(tmp_path):
    root = tmp_path / "deep"
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    write_16bit(root / "PNGImages" / "a.png", value_range=(0, 32768))
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[5:20, 5:25] = 1
    Image.fromarray(mask).save(root / "PedMasks" / "a_mask.png")
    config = load_config(SAMPLE / "shapes_masks.toml", [f"data.train='{root}'", f"data.val='{root}'"])
    image, _ = build_dataset(config, "val", train=False)[0]
    assert image.dtype == torch.float32
    assert image.max().item() == pytest.approx(128 / 255, abs=1 / 255)
    assert image.min().item() == 0.0


def test_float_and_32bit_images_out_of_range_are_refused_with_the_reason():
    with pytest.raises(UnsupportedImageError, match=r"float image with values in \[7, 7\]"):
        to_rgb(Image.fromarray(np.full((4, 4), 7.0, dtype=np.float32)), "x.tif")
    with pytest.raises(UnsupportedImageError, match="32-bit integer image"):
        to_rgb(Image.fromarray(np.full((4, 4), 100000, dtype=np.int32)), "x.tif")
    ok = np.asarray(to_rgb(Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32))))
    assert (ok == 128).all()


class Images(DetectionDataset):
    """One box per image; the images are given."""

    def __init__(self, images, boxes=None):
        super().__init__(["a"])
        self.images = images
        self.boxes = boxes

    def __len__(self):
        return len(self.images)

    def load_image(self, index):
        return self.images[index]

    def raw_target(self, index):
        boxes = self.boxes[index] if self.boxes is not None else torch.tensor([[2.0, 2.0, 20.0, 20.0]])
        return {"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64), "image_id": index}

    def sample_info(self, index):
        return SampleInfo(index, index, None, 32, 32)


def test_preflight_flags_images_whose_pixels_are_constant():
    varied = (torch.arange(32 * 32) % 256).to(torch.uint8).reshape(1, 32, 32).expand(3, 32, 32).clone()
    white = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    all_white = by_rule(scan(Images([white] * 4)))["constant_images"]
    assert all_white.flag.severity == Severity.ERROR and "every pixel = 1" in all_white.evidence
    some = by_rule(scan(Images([white, varied, varied, varied])))["constant_images"]
    assert some.flag.severity == Severity.WARNING and "1 of 4" in some.evidence
    assert by_rule(scan(Images([varied] * 4)))["constant_images"].state == CheckState.OK
    assert check_constant_images([]).state == CheckState.NOT_CHECKED


# -- empty targets shaped (0,) ---------------------------------------------------------------------
def test_empty_target_shaped_0_is_named_as_a_warning(tmp_path):
    (tmp_path / "flat_boxes.py").write_text(
        "import torch\n"
        "class Flat(torch.utils.data.Dataset):\n"
        "    def __len__(self): return 3\n"
        "    def __getitem__(self, i):\n"
        "        image = (torch.arange(32 * 32) % 255).to(torch.uint8).reshape(1, 32, 32).expand(3, 32, 32)\n"
        "        boxes = torch.zeros((0,)) if i == 1 else torch.tensor([[2.0, 2.0, 20.0, 20.0]])\n"
        "        return image.clone(), {'boxes': boxes, 'labels': torch.ones(len(boxes), dtype=torch.int64)}\n"
    )
    config = load_config(SAMPLE / "shapes.toml", [
        "data.format='module'", "data.train='flat_boxes:Flat'", "data.val=''", "data.classes=['a']",
        "data.train_images=''", "data.val_images=''",
    ])
    config = config.with_base_dir(tmp_path)
    result = scan(build_dataset(config, "train", train=False))
    verdict = by_rule(result)["empty_target_shape"]
    assert verdict.flag.severity == Severity.WARNING and "#1" in verdict.evidence
    assert not result.has_errors


# -- orphan annotations and a few unreadable files (through `cockpit check`) ----------------------
def copy_sample(tmp_path):
    data = tmp_path / "sample"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("runs"))
    return data


def test_annotation_for_a_missing_image_id_is_flagged(tmp_path):
    data = copy_sample(tmp_path)
    ann = json.loads((data / "shapes" / "val.json").read_text())
    ann["annotations"].append(dict(ann["annotations"][0], id=999999, image_id=424242))
    (data / "shapes" / "val.json").write_text(json.dumps(ann))
    config = load_config(data / "shapes.toml")
    report = pf.run_preflight(config)
    [verdict] = [v for s, v in report.verdicts() if v.rule == "orphan_annotations" and s == "val"]
    assert verdict.flag.severity == Severity.WARNING and "424242" in verdict.evidence
