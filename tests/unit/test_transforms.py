"""v2 transforms keep boxes in sync with the image; live augmentation probabilities."""

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cockpit.config.schema import AugmentSection
from cockpit.data.transforms import apply_transform, eval_transform, set_augment_probabilities, train_transform


def _target(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels), "image_id": 5}


def test_horizontal_flip_moves_boxes():
    image = torch.zeros((3, 50, 100), dtype=torch.uint8)
    image[:, 20:40, 10:30] = 255
    tf = train_transform(AugmentSection(hflip=1.0, photometric=0.0))
    out, target = apply_transform(tf, image, _target([[10, 20, 30, 40]], [2]))
    assert target["boxes"].tolist() == [[70.0, 20.0, 90.0, 40.0]]
    assert target["labels"].tolist() == [2]
    # The pixels moved with the box.
    assert out[:, 20:40, 70:90].min() == 1.0 and out[:, 20:40, 10:30].max() == 0.0


def test_output_types_from_pil():
    image = Image.new("RGB", (64, 48), (255, 0, 0))
    out, target = apply_transform(eval_transform(), image, _target([[1, 2, 10, 12]], [1]))
    assert out.dtype == torch.float32 and out.shape == (3, 48, 64) and float(out.max()) == 1.0
    assert type(out) is torch.Tensor and type(target["boxes"]) is torch.Tensor
    assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
    assert target["image_id"] == 5 and target["area"].tolist() == [90.0] and target["iscrowd"].tolist() == [0]


def test_degenerate_box_sanitised_with_labels_in_sync():
    image = torch.zeros((3, 40, 40), dtype=torch.uint8)
    target = _target([[5, 5, 5, 20], [2, 2, 12, 12], [8, 8, 20, 8]], [1, 2, 1])
    target["area"] = torch.tensor([0.0, 100.0, 0.0])
    target["iscrowd"] = torch.tensor([0, 0, 0])
    _, out = apply_transform(train_transform(AugmentSection(hflip=0.0, photometric=0.0)), image, target)
    assert out["boxes"].tolist() == [[2.0, 2.0, 12.0, 12.0]]
    assert out["labels"].tolist() == [2] and out["area"].tolist() == [100.0] and out["iscrowd"].tolist() == [0]


def test_empty_target_passes_through():
    image = torch.zeros((3, 30, 30), dtype=torch.uint8)
    _, out = apply_transform(train_transform(), image, _target([], []))
    assert out["boxes"].shape == (0, 4) and out["labels"].shape == (0,) and out["labels"].dtype == torch.int64


def test_set_augment_probabilities_in_process():
    tf = train_transform(AugmentSection(hflip=0.0, photometric=0.0))
    image = torch.zeros((3, 10, 20), dtype=torch.uint8)
    _, out = apply_transform(tf, image, _target([[0, 0, 5, 5]], [1]))
    assert out["boxes"].tolist() == [[0.0, 0.0, 5.0, 5.0]]
    set_augment_probabilities(tf, hflip=1.0)
    _, out = apply_transform(tf, image, _target([[0, 0, 5, 5]], [1]))
    assert out["boxes"].tolist() == [[15.0, 0.0, 20.0, 5.0]]
    assert tf.live.get("photometric") == 0.0  # None leaves a probability alone


class _FlipProbe(Dataset):
    """Reports whether each sample came out flipped (box at the right edge)."""

    def __init__(self, transform):
        self.transform = transform

    def __len__(self):
        return 6

    def __getitem__(self, index):
        image = torch.zeros((3, 8, 16), dtype=torch.uint8)
        _, target = apply_transform(self.transform, image, _target([[0, 0, 4, 4]], [1]))
        return target["boxes"][0, 0].item() > 0


def _first(batch):
    return batch[0]


# spawn: the probabilities reach the worker pickled (a shared-memory handle), not forked.
@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_live_probability_reaches_running_worker(start):
    tf = train_transform(AugmentSection(hflip=0.0, photometric=0.0))
    loader = DataLoader(_FlipProbe(tf), batch_size=1, num_workers=1, prefetch_factor=2, collate_fn=_first,
                        multiprocessing_context=start)
    it = iter(loader)
    first = next(it)
    # Indices 0-2 were requested before this change; 3-5 are requested after it.
    set_augment_probabilities(tf, hflip=1.0)
    rest = list(it)
    assert first is False and rest[2:] == [True, True, True]
