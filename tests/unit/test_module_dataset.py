"""A user's tutorial-style Dataset, imported by name from the config's folder."""

import sys
import textwrap

import pytest
import torch

from cockpit.config.schema import Config
from cockpit.data.errors import DatasetError
from cockpit.data.loader import build_dataset

MODULE = textwrap.dedent(
    '''
    import torch
    from PIL import Image

    class Toy(torch.utils.data.Dataset):
        def __init__(self, n, kind="pil"):
            self.n, self.kind = n, kind

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            if self.kind == "pil":
                image = Image.new("RGB", (32, 24), (255, 255, 255))
            elif self.kind == "uint8":
                image = torch.full((3, 24, 32), 255, dtype=torch.uint8)
            else:
                image = torch.full((3, 24, 32), 255.0)
            target = {"boxes": [[1.0, 2.0, 11.0, 12.0]], "labels": [i % 2 + 1], "image_id": 99}
            return image, target
    '''
)


@pytest.fixture
def config(tmp_path, monkeypatch):
    name = f"user_ds_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.setattr(sys, "path", list(sys.path))  # build_dataset adds the config folder
    yield Config.model_validate(
        {"data": {"format": "module", "classes": ["a", "b"], "train": f"{name}:Toy", "val": f"{name}:Toy",
                  "train_args": {"n": 3}, "val_args": {"n": 2, "kind": "uint8"}}}
    ).with_base_dir(tmp_path)
    sys.modules.pop(name, None)


def test_module_dataset_imported_by_name(config):
    train = build_dataset(config, "train", train=True)
    assert len(train) == 3
    image, target = train[1]
    assert image.dtype == torch.float32 and image.shape == (3, 24, 32) and float(image.max()) <= 1.0
    assert target["labels"].tolist() == [2] and target["labels"].dtype == torch.int64
    assert target["image_id"] == 1  # indices, so ids stay unique whatever the user returns
    val = build_dataset(config, "val", train=False)
    image, target = val[0]
    assert float(image.max()) == 1.0  # uint8 scaled to [0, 1]
    assert target["boxes"].tolist() == [[1.0, 2.0, 11.0, 12.0]]
    assert len(val.coco_api().anns) == 2


def test_float_tensor_left_as_is(config):
    ds = build_dataset(config.copy_with({"data.val_args": {"n": 1, "kind": "float"}}), "val", train=False)
    assert float(ds[0][0].max()) == 255.0  # the pre-flight check flags this, the adapter does not hide it


def test_module_errors(config):
    with pytest.raises(DatasetError, match="no_such_module"):
        build_dataset(config.copy_with({"data.train": "no_such_module:Toy"}), "train", train=True)
    spec = config.data.train.split(":")[0] + ":Nope"
    with pytest.raises(DatasetError, match="no class 'Nope'"):
        build_dataset(config.copy_with({"data.train": spec}), "train", train=True)
    with pytest.raises(DatasetError, match="module_name:ClassName"):
        build_dataset(config.copy_with({"data.train": "just_a_name"}), "train", train=True)
    with pytest.raises(DatasetError, match="TypeError"):
        build_dataset(config.copy_with({"data.train_args": {"wrong": 1}}), "train", train=True)
