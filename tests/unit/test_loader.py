"""collate, build_dataset errors, seeded loaders, and skipping unreadable samples."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cockpit.config.schema import Config
from cockpit.data.errors import DatasetError
from cockpit.data.loader import Batch, SkippedSample, build_dataset, build_loader, collate_fn, reseed_loader


def test_collate_fn_keeps_variable_sizes():
    batch = [(torch.zeros(3, 4, 5), {"n": 0}), (torch.zeros(3, 6, 7), {"n": 1})]
    images, targets = collate_fn(batch)
    assert [i.shape[1] for i in images] == [4, 6] and targets == ({"n": 0}, {"n": 1})


def _coco_config(tmp_path, n=6, **data):
    images = []
    for i in range(n):
        Image.fromarray(np.full((20, 24, 3), 40 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 24, "height": 20})
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}]
    (tmp_path / "ann.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}))
    settings = {"format": "coco", "classes": ["thing"], "train": "ann.json", "val": "ann.json", "batch_size": 3, "num_workers": 0}
    settings.update(data)
    return Config.model_validate({"data": settings}).with_base_dir(tmp_path)


def test_unreadable_samples_are_skipped_and_reported(tmp_path):
    config = _coco_config(tmp_path)
    ds = build_dataset(config, "train", train=True)
    (tmp_path / "1.png").unlink()  # deleted mid-run
    (tmp_path / "2.png").write_bytes((tmp_path / "3.png").read_bytes()[:60])  # truncated
    (tmp_path / "4.png").write_text("not an image")
    batches = list(build_loader(ds, config, train=False, device_is_cuda=False, seed=0))
    assert all(isinstance(b, Batch) for b in batches)
    assert sum(len(b.images) for b in batches) == 3
    assert all(len(b.images) == len(b.targets) for b in batches)
    skipped = {s.index: s for b in batches for s in b.skipped}
    assert sorted(skipped) == [1, 2, 4]
    assert all(isinstance(s, SkippedSample) for s in skipped.values())
    assert skipped[1].path == str(tmp_path / "1.png") and "FileNotFoundError" in skipped[1].message
    assert skipped[4].message  # the error text travels with the report


def test_whole_batch_skipped_gives_empty_batch(tmp_path):
    config = _coco_config(tmp_path, n=2, batch_size=2)
    ds = build_dataset(config, "val", train=False)
    for i in range(2):
        (tmp_path / f"{i}.png").unlink()
    (batch,) = list(build_loader(ds, config, train=False, device_is_cuda=False))
    assert batch.images == () and batch.targets == () and len(batch.skipped) == 2


def test_seeded_shuffle_is_reproducible(tmp_path):
    config = _coco_config(tmp_path)
    ds = build_dataset(config, "train", train=False)

    def order(seed, epoch):
        loader = build_loader(ds, config, train=True, device_is_cuda=False, seed=seed)
        reseed_loader(loader, seed, epoch)
        return [t["image_id"] for b in loader for t in b.targets]

    assert order(0, 1) == order(0, 1)
    assert sorted(order(0, 1)) == [1, 2, 3, 4, 5, 6]
    assert order(0, 1) != order(0, 2) or order(0, 1) != order(0, 3)


def test_build_dataset_missing_paths(tmp_path):
    config = _coco_config(tmp_path, n=1)
    with pytest.raises(DatasetError, match="missing.json"):
        build_dataset(config.copy_with({"data.val": "missing.json"}), "val", train=False)
    with pytest.raises(DatasetError, match="imgs"):
        build_dataset(config.copy_with({"data.train_images": "imgs"}), "train", train=True)
    with pytest.raises(DatasetError, match="data.val is not set"):
        build_dataset(config.copy_with({"data.val": ""}), "val", train=False)
    masks = config.copy_with({"data.format": "masks", "data.train": "no_root"})
    with pytest.raises(DatasetError, match="no_root"):
        build_dataset(masks, "train", train=True)
