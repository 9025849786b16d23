"""The dataset fingerprint: what defines each split, hashed, with its image count."""

from __future__ import annotations

import hashlib

from cockpit.config import Config
from cockpit.data.fingerprint import dataset_fingerprint


def _config(tmp_path, **data) -> Config:
    return Config.model_validate({"data": {"classes": ["a"], **data}}).with_base_dir(tmp_path)


def test_coco_splits_hash_the_annotation_file(tmp_path):
    (tmp_path / "train.json").write_text('{"images": []}')
    config = _config(tmp_path, train="train.json", val="")
    fingerprint = dataset_fingerprint(config, 5, None)
    assert fingerprint["train"] == {"source": "train.json", "images": 5,
                                    "sha256": hashlib.sha256(b'{"images": []}').hexdigest()}
    assert "val" not in fingerprint and fingerprint["classes"] == ["a"]
    (tmp_path / "train.json").write_text('{"images": [1]}')
    assert dataset_fingerprint(config, 5, None)["train"]["sha256"] != fingerprint["train"]["sha256"]


def test_masks_splits_hash_the_file_listing(tmp_path):
    root = tmp_path / "masks"
    (root / "PNGImages").mkdir(parents=True)
    (root / "PNGImages" / "a.png").write_bytes(b"x" * 10)
    config = _config(tmp_path, format="masks", train="masks", val="masks")
    first = dataset_fingerprint(config, 1, 1)
    assert first["train"]["sha256"] == first["val"]["sha256"]
    (root / "PNGImages" / "b.png").write_bytes(b"y")
    assert dataset_fingerprint(config, 2, 2)["train"]["sha256"] != first["train"]["sha256"]


def test_module_splits_hash_the_spec_and_an_unreadable_file_says_why(tmp_path):
    config = _config(tmp_path, format="module", train="pkg:Data", val="pkg:Data", val_args={"split": "val"})
    fingerprint = dataset_fingerprint(config, 3, 2)
    assert fingerprint["train"]["sha256"] != fingerprint["val"]["sha256"]
    missing = dataset_fingerprint(_config(tmp_path, train="gone.json"), None, None)
    assert missing["train"]["sha256"] is None and "FileNotFoundError" in missing["train"]["error"]
