"""Pre-flight checks: each defect in a small, deliberately broken dataset is named with its
offenders, count and fix; a clean dataset (and the bundled sample) passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cockpit.config.schema import Config
from cockpit.data.base import DetectionDataset, SampleInfo
from cockpit.diagnostics import preflight as pf
from cockpit.diagnostics.flags import CheckState
from cockpit.engine.events import Severity

REPO = Path(__file__).resolve().parents[2]
TINY = pf.ARCH_ANCHORS["tiny"]


def target(boxes, labels, boxes_dtype=torch.float32, labels_dtype=torch.int64):
    return {
        "boxes": torch.as_tensor(boxes, dtype=boxes_dtype).reshape(-1, 4) if boxes_dtype is not None else boxes,
        "labels": torch.as_tensor(labels, dtype=labels_dtype),
    }


class MemDataset(DetectionDataset):
    """In-memory targets; images are uint8 gradients (not constant: that is flagged) unless given."""

    def __init__(self, targets, sizes=None, paths=None, image_ids=None, images=None, classes=("a", "b")):
        super().__init__(list(classes))
        self.targets = targets
        self.sizes = sizes or [(64, 48)] * len(targets)
        self.paths = paths or [None] * len(targets)
        self.image_ids = image_ids or list(range(len(targets)))
        self.images = images

    def __len__(self):
        return len(self.targets)

    def load_image(self, index):
        if self.images is not None:
            return self.images[index]
        w, h = self.sizes[index]
        return (torch.arange(h * w) % 256).to(torch.uint8).reshape(1, h, w).expand(3, h, w).clone()

    def raw_target(self, index):
        return dict(self.targets[index], image_id=self.image_ids[index])

    def sample_info(self, index):
        w, h = self.sizes[index]
        return SampleInfo(index, self.image_ids[index], self.paths[index], w, h)


def scan(dataset, split="train", num_classes=3, classes=("a", "b"), **kw):
    kw.setdefault("check_files", False)
    return pf.scan_split(
        dataset, split=split, num_classes=num_classes, classes=list(classes), anchors=TINY, **kw,
    )


def by_rule(verdicts):
    return {v.rule: v for v in verdicts}


def clean_targets(n=6):
    return [target([[5, 5, 30, 30], [20, 10, 50, 40]], [1, 2]) for _ in range(n)]


def flagged(result):
    return {v.rule: v for v in result.verdicts if v.state == CheckState.FLAGGED}


# ---------------------------------------------------------------------------- clean data


def test_clean_dataset_passes_and_report_is_json(tmp_path):
    paths = []
    for i in range(6):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (64, 48)).save(path)
        paths.append(str(path))
    result = scan(MemDataset(clean_targets(), paths=paths), check_files=True)
    assert flagged(result) == {}
    assert by_rule(result.verdicts)["unreadable_images"].state == CheckState.OK
    assert by_rule(result.verdicts)["image_range"].state == CheckState.OK
    assert result.summary["images"] == 6 and result.summary["boxes"] == 12
    assert result.summary["class_histogram"] == {"a": 6, "b": 6}
    assert result.summary["box_size_histogram"]["16-32"] == 12

    report = pf.PreflightReport({"train": result, "val": result})
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) >= {"splits", "verdicts", "summary"}
    assert set(data["splits"]) == {"train", "val"}
    assert data["splits"]["train"]["images_without_objects"] == 0
    first = data["verdicts"][0]
    assert set(first) >= {"rule", "title", "state", "severity", "evidence", "likely_cause", "fix", "split"}
    assert data["summary"]["has_errors"] is False and not report.has_errors
    assert "passed" in pf.format_table(report)


# ------------------------------------------------------------------------------- boxes


def test_degenerate_boxes_named_with_count_and_fix():
    targets = clean_targets(4) + [target([[10, 10, 10, 20], [5, 5, 30, 30]], [1, 1])]
    ds = MemDataset(targets, paths=[None] * 4 + ["/data/bad.png"])
    v = flagged(scan(ds))["degenerate_boxes"]
    assert v.flag.severity == Severity.ERROR
    assert "1 of 10 boxes" in v.evidence and "bad.png (#4)" in v.evidence and "[10, 10, 10, 20]" in v.evidence
    assert "x2 > x1" in v.flag.fix


def test_boxes_partly_outside_are_a_warning_that_says_clipped():
    targets = clean_targets(3) + [target([[50, 30, 70, 47]], [1])]  # 64 px wide image
    v = flagged(scan(MemDataset(targets)))["boxes_outside_image"]
    assert v.flag.severity == Severity.WARNING
    assert "1 partly outside (clipping to the image keeps them)" in v.evidence and "#3" in v.evidence


def test_boxes_entirely_outside_are_an_error():
    targets = clean_targets(3) + [target([[100, 100, 120, 130]], [1])]
    v = flagged(scan(MemDataset(targets)))["boxes_outside_image"]
    assert v.flag.severity == Severity.ERROR and "entirely outside" in v.evidence


def test_normalized_coordinates():
    targets = [target([[0.1, 0.2, 0.4, 0.5], [0.5, 0.5, 0.9, 0.8]], [1, 2]) for _ in range(5)]
    v = flagged(scan(MemDataset(targets, sizes=[(640, 480)] * 5)))["normalized_coords"]
    assert v.flag.severity == Severity.ERROR
    assert "5 of 5 images" in v.evidence and "640x480" in v.evidence
    assert "multiply x by the image width" in v.flag.fix


def test_xywh_given_as_xyxy():
    # (x, y, w, h) boxes: w < x for objects away from the left edge -> "x2 < x1" as xyxy.
    xywh = [[40, 30, 20, 15], [100, 50, 30, 40], [60, 80, 25, 25], [10, 10, 30, 30]]
    targets = [target(xywh, [1, 1, 2, 2]) for _ in range(3)]
    result = scan(MemDataset(targets, sizes=[(200, 150)] * 3))
    flags = flagged(result)
    v = flags["xywh_as_xyxy"]
    assert v.flag.severity == Severity.ERROR and "box_convert" in v.flag.fix
    assert "9 of 12 boxes" in v.evidence
    assert "degenerate_boxes" in flags  # the broken boxes are degenerate too


def test_a_few_degenerate_boxes_are_not_called_xywh():
    targets = clean_targets(10) + [target([[10, 10, 10, 20]], [1])]
    assert "xywh_as_xyxy" not in flagged(scan(MemDataset(targets)))


# ------------------------------------------------------------------------------ labels


def test_label_zero():
    targets = [target([[5, 5, 30, 30]], [0]) for _ in range(4)]
    v = flagged(scan(MemDataset(targets)))["label_zero"]
    assert v.flag.severity == Severity.ERROR
    assert "4 of 4 boxes" in v.evidence and "(every box)" in v.evidence
    assert "0 is background; your first class must be 1" in v.flag.fix


def test_labels_out_of_range():
    targets = clean_targets(2) + [target([[5, 5, 30, 30]], [3]), target([[5, 5, 30, 30]], [7])]
    v = flagged(scan(MemDataset(targets)))["label_out_of_range"]
    assert "labels 3, 7" in v.evidence and "num_classes = 3" in v.evidence and "1..2" in v.evidence
    assert "#2" in v.evidence and "#3" in v.evidence


def test_class_mismatch_and_unused_classes():
    targets = [target([[5, 5, 30, 30]], [1]) for _ in range(3)]  # class "b" never used
    v = flagged(scan(MemDataset(targets)))["class_mismatch"]
    assert v.flag.severity == Severity.WARNING and "classes with no box in train: b" in v.evidence
    val = flagged(scan(MemDataset(targets), split="val"))["class_mismatch"]
    assert val.flag.severity == Severity.INFO

    wrong = MemDataset(clean_targets(), classes=("b", "a"))
    v = flagged(scan(wrong))["class_mismatch"]
    assert v.flag.severity == Severity.ERROR and "data.classes" in v.evidence


def test_class_mismatch_against_category_names():
    arrays = pf.TargetArrays.from_targets(clean_targets(2), [(64, 48)] * 2)
    arrays.category_names = ["a", "c"]
    v = pf.check_class_mismatch(arrays, ["a", "b"])
    assert v.state == CheckState.FLAGGED and "c" in v.evidence and "not among the data's categories: b" in v.evidence


# ------------------------------------------------------------------------------ dtypes


def test_target_dtypes_and_shapes():
    targets = clean_targets(2) + [
        target([[5, 5, 30, 30]], [1], boxes_dtype=torch.int64),
        target([[5, 5, 30, 30]], [1], labels_dtype=torch.int32),
        {"boxes": torch.zeros((0,)), "labels": torch.zeros((0,), dtype=torch.int64)},
    ]
    result = scan(MemDataset(targets))
    v = flagged(result)["target_dtype"]
    assert v.flag.severity == Severity.ERROR
    assert "boxes int64" in v.evidence and "labels int32" in v.evidence and "(0,)" in v.evidence
    assert "#2" in v.evidence and "#3" in v.evidence and "#4" in v.evidence
    assert "float32" in v.flag.fix and "int64" in v.flag.fix and "(0, 4)" in v.flag.fix
    assert result.summary["images_without_objects"] == 1  # the (0,) target still counts as empty


def test_boxes_and_labels_of_different_length():
    arrays = pf.TargetArrays.from_targets([target([[1, 1, 5, 5], [2, 2, 6, 6]], [1])], [(10, 10)])
    v = pf.check_target_dtypes(arrays)
    assert v.state == CheckState.FLAGGED and "2 boxes but 1 labels" in v.evidence
    assert pf.check_label_zero(arrays).state == CheckState.OK  # unknown labels are not judged


def test_raw_target_exception_is_reported_not_raised():
    class Broken(MemDataset):
        def raw_target(self, index):
            if index == 1:
                raise KeyError("bbox")
            return super().raw_target(index)

    v = flagged(scan(Broken(clean_targets(3))))["target_dtype"]
    assert "KeyError" in v.evidence and "#1" in v.evidence


# ------------------------------------------------------------------------------ images


def test_images_as_0_255_floats_flagged():
    images = [torch.full((3, 48, 64), 200.0) for _ in range(4)]
    v = flagged(scan(MemDataset(clean_targets(4), images=images)))["image_range"]
    assert v.flag.severity == Severity.ERROR
    assert "0-255" in v.evidence and "ToDtype(torch.float32, scale=True)" in v.flag.fix


def test_image_range_pure_check():
    good = pf.ImageSample(0, "#0", "tensor", "float32", (3, 8, 8), 0.0, 1.0)
    chw_wrong = pf.ImageSample(1, "#1", "tensor", "float32", (8, 8, 3), 0.0, 1.0)
    twice = pf.ImageSample(2, "#2", "tensor", "float32", (3, 8, 8), 0.0, 0.003)
    assert pf.check_image_range([good]).state == CheckState.OK
    assert pf.check_image_range([]).state == CheckState.NOT_CHECKED
    assert pf.check_image_range([good, chw_wrong]).flag.severity == Severity.ERROR
    assert pf.check_image_range([twice]).flag.severity == Severity.WARNING
    failed = pf.ImageSample(3, "x.png (#3)", "error", "", (), error="OSError: truncated")
    assert "x.png (#3)" in pf.check_image_range([failed]).evidence


def test_missing_and_unreadable_files(tmp_path):
    good = tmp_path / "ok.png"
    Image.new("RGB", (64, 48)).save(good)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png at all")
    paths = [str(good), str(tmp_path / "gone.png"), str(junk)]
    result = scan(MemDataset(clean_targets(3), paths=paths), check_files=True, decode_samples=0)
    v = flagged(result)["unreadable_images"]
    assert v.flag.severity == Severity.ERROR
    assert "1 missing: gone.png (#1)" in v.evidence and "1 unreadable: junk.png (#2)" in v.evidence


def test_declared_size_differs_from_file(tmp_path):
    path = tmp_path / "rot.png"
    Image.new("RGB", (48, 64)).save(path)  # the file is portrait, the annotation says 64x48
    result = scan(MemDataset(clean_targets(1), paths=[str(path)]), check_files=True, decode_samples=0)
    v = flagged(result)["image_size_mismatch"]
    assert "rot.png (#0)" in v.evidence and "swapped" in v.evidence


def test_sizes_come_from_headers_when_not_declared(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (64, 48)).save(path)
    ds = MemDataset([target([[50, 30, 70, 47]], [1])], paths=[str(path)])
    ds.sizes = [(None, None)]
    ds.sample_info = lambda i: SampleInfo(i, 0, str(path), None, None)
    v = flagged(scan(ds, check_files=True, decode_samples=0))["boxes_outside_image"]
    assert "64x48" in v.evidence


def test_duplicate_image_ids():
    ds = MemDataset(clean_targets(4), image_ids=[1, 2, 2, 3], paths=[None, None, "/x/p.png", None])
    v = flagged(scan(ds))["duplicate_image_ids"]
    assert "id 2" in v.evidence and "#1" in v.evidence and "p.png (#2)" in v.evidence


def test_images_without_objects_info_and_error():
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)}
    few = scan(MemDataset(clean_targets(5) + [dict(empty)]))
    v = by_rule(few.verdicts)["empty_images"]
    assert v.state == CheckState.OK and "1 of 6 images" in v.evidence
    most = by_rule(scan(MemDataset(clean_targets(1) + [dict(empty)] * 3)).verdicts)["empty_images"]
    assert most.flag.severity == Severity.INFO
    none = by_rule(scan(MemDataset([dict(empty)] * 3)).verdicts)["empty_images"]
    assert none.flag.severity == Severity.ERROR


# ------------------------------------------------------------------------------ anchors


def test_anchor_shapes_match_torchvision():
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    gen = AnchorGenerator(sizes=((32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    base = gen.generate_anchors([32, 64], [0.5, 1.0, 2.0])
    tv = torch.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], dim=1).numpy()
    ours = pf.anchor_shapes((32, 64), (0.5, 1.0, 2.0))
    assert sorted(map(tuple, ours.tolist())) == sorted(map(tuple, tv.tolist()))


def test_best_anchor_iou_and_resize_scale():
    anchors = pf.anchor_shapes((32,), (1.0,))
    iou = pf.best_anchor_iou(np.array([[32, 32], [16, 16], [64, 32]]), anchors)
    assert iou.tolist() == pytest.approx([1.0, 0.25, 0.5])
    # 640x480 to min 800 / max 1333: the short side rules (x1.667).
    assert pf.resize_scale(np.array([640.0]), np.array([480.0]), 800, 1333)[0] == pytest.approx(800 / 480)
    # 2000x500: the long side cap rules.
    assert pf.resize_scale(np.array([2000.0]), np.array([500.0]), 800, 1333)[0] == pytest.approx(1333 / 2000)


def test_tiny_objects_flag_anchor_coverage():
    # 4 px objects on 640 px images: the tiny preset resizes to 160 px, they become 1 px.
    targets = [target([[100, 100, 104, 104], [300, 200, 305, 204]], [1, 2]) for _ in range(4)]
    result = scan(MemDataset(targets, sizes=[(640, 640)] * 4))
    v = flagged(result)["anchor_coverage"]
    assert v.flag.severity == Severity.WARNING
    assert "100%" in v.evidence and "smaller than the smallest anchor" in v.evidence
    assert "model.min_size" in v.flag.fix


def test_ordinary_objects_cover_the_anchors():
    v = by_rule(scan(MemDataset(clean_targets())).verdicts)["anchor_coverage"]
    assert v.state == CheckState.OK and "below 0.7" in v.evidence


def test_anchor_spec_table_and_overrides():
    config = Config()
    spec = pf.anchor_spec(config)
    assert (spec.min_size, spec.max_size, spec.sizes) == (800, 1333, (32, 64, 128, 256, 512))
    config = Config.model_validate({"model": {"arch": "fasterrcnn_mobilenet_v3_large_320_fpn", "min_size": 400}})
    spec = pf.anchor_spec(config)
    assert (spec.min_size, spec.max_size) == (400, 640)


# ---------------------------------------------------------------------------------- COCO


def coco_json(images, annotations, categories=({"id": 3, "name": "a"}, {"id": 7, "name": "b"})):
    return {"images": list(images), "annotations": list(annotations), "categories": list(categories)}


def test_arrays_from_coco_converts_like_the_adapter():
    data = coco_json(
        [{"id": 5, "file_name": "b.png", "width": 100, "height": 80},
         {"id": 2, "file_name": "a.png", "width": 100, "height": 80},
         {"id": 5, "file_name": "b_again.png", "width": 100, "height": 80}],
        [{"id": 1, "image_id": 5, "category_id": 7, "bbox": [10, 20, 30, 40]},
         {"id": 2, "image_id": 2, "category_id": 3, "bbox": [0, 0, 5, 5]},
         {"id": 3, "image_id": 5, "category_id": 3, "bbox": [1, 1, 2, 2], "iscrowd": 1}],
    )
    arrays = pf.arrays_from_coco(data, category_to_label={3: 1, 7: 2}, images_dir="/imgs")
    assert arrays.image_ids.tolist() == [2, 5]
    assert arrays.paths == ["/imgs/a.png", "/imgs/b.png"]
    assert arrays.box_counts.tolist() == [1, 1]
    assert arrays.boxes.tolist() == [[0, 0, 5, 5], [10, 20, 40, 60]]
    assert arrays.labels.tolist() == [1, 2]
    assert arrays.category_names == ["a", "b"]
    v = pf.check_duplicate_image_ids(arrays)
    assert v.state == CheckState.FLAGGED and "b_again.png" in v.evidence and "b.png (#1)" in v.evidence


def write_coco(root: Path, name: str, boxes_per_image, size=(96, 80)):
    folder = root / f"{name}_images"
    folder.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i, boxes in enumerate(boxes_per_image):
        Image.new("RGB", size, (i * 20 % 255, 90, 90)).save(folder / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": size[0], "height": size[1]})
        for j, bbox in enumerate(boxes):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 3 + 4 * (j % 2), "bbox": bbox,
                         "area": bbox[2] * bbox[3], "iscrowd": 0})
    (root / f"{name}.json").write_text(json.dumps(coco_json(images, anns)))


def coco_config(root: Path, **data) -> Config:
    section = {"format": "coco", "classes": ["a", "b"], "train": "train.json", "val": "val.json",
               "train_images": "train_images", "val_images": "val_images"}
    section.update(data)
    return Config.model_validate({"data": section, "model": {"arch": "tiny"}}).with_base_dir(root)


def test_run_preflight_on_coco_files(tmp_path):
    good = [[[10, 10, 30, 30], [40, 20, 30, 40]]] * 4
    write_coco(tmp_path, "train", good)
    # val: COCO bboxes are xywh already; a zero-width bbox is degenerate after conversion.
    write_coco(tmp_path, "val", [[[10, 10, 30, 30], [50, 10, 0, 20]]] * 2)
    report = pf.run_preflight(coco_config(tmp_path))
    assert set(report.splits) == {"train", "val"}
    train = {v.rule: v for v in report.splits["train"].verdicts}
    assert all(v.state == CheckState.OK for v in train.values()), [v.evidence for v in train.values() if v.flag]
    assert report.has_errors
    val_flags = {v.rule for s, v in report.flagged() if s == "val"}
    assert "degenerate_boxes" in val_flags
    data = json.loads(json.dumps(report.to_dict()))
    assert data["model"]["anchor_sizes"] == [16, 32, 64, 128]
    assert any(v["rule"] == "degenerate_boxes" and v["split"] == "val" and v["state"] == "FLAGGED" for v in data["verdicts"])
    table = pf.format_table(report)
    assert "[ERROR] Degenerate boxes" in table and "(val)" in table and "FAILED" in table


def test_run_preflight_reports_a_split_that_cannot_open(tmp_path):
    write_coco(tmp_path, "train", [[[10, 10, 30, 30]]] * 2)
    report = pf.run_preflight(coco_config(tmp_path, val="nowhere.json"))
    v = report.splits["val"].verdicts[0]
    assert v.rule == "dataset_load" and v.flag.severity == Severity.ERROR and "nowhere.json" in v.evidence
    assert report.has_errors and "train" in report.splits


def test_bundled_sample_passes_without_warnings():
    from cockpit.config import load_config

    for name in ("shapes.toml", "shapes_masks.toml"):
        report = pf.run_preflight(load_config(REPO / "sample_data" / name))
        assert report.flagged() == [], [(s, v.evidence) for s, v in report.flagged()]
        assert report.splits["train"].summary["boxes"] > 0


def test_format_table_lists_problems_with_fix():
    result = scan(MemDataset([target([[5, 5, 30, 30]], [0])] * 2))
    text = pf.format_table(pf.PreflightReport({"train": result}))
    assert "Label 0 used for an object" in text and "ERROR" in text
    assert "fix:" in text and "your first class must be 1" in text
    assert "train: 2 images, 2 boxes" in text
