"""Building datasets and DataLoaders from the config, and skipping unreadable samples.

API (what the engine uses)::

    build_dataset(config, split, train) -> DetectionDataset
        split "train" | "val"; train=True applies train_transform(config.augment),
        False eval_transform(). Raises DatasetError (message names the path / key).

    build_loader(dataset, config, train, device_is_cuda, seed) -> DataLoader
        Wraps ``dataset`` in SkippingDataset; batch_size / num_workers from config.data;
        shuffles (train only) with a torch.Generator seeded with ``seed``; pin_memory on
        CUDA; persistent_workers=False. Each item it yields is a ``Batch``.

    Batch(images, targets, skipped)          a NamedTuple; unpack it as such
        images   tuple of float32 CHW tensors (may be EMPTY if every sample failed:
                 skip the iteration then)
        targets  tuple of target dicts, aligned with images
        skipped  tuple of SkippedSample(index, path, message), one per sample of this
                 batch that could not be read (deleted, truncated, not an image, a
                 user's __getitem__ raising). Reports travel inside the batch, so they
                 reach the main process even when workers did the reading.

    reseed_loader(loader, seed, epoch)       call before iterating epoch ``epoch``: the
        shuffle order and worker seeds then depend only on (seed, epoch), so a resumed
        run sees the same order as an uninterrupted one.

    collate_fn(batch) -> tuple(zip(*batch))  the lesson's collate, for plain datasets.

Live augmentation changes (``transforms.set_augment_probabilities``) reach running
workers through shared memory; see ``cockpit.data.transforms``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cockpit.data.base import DetectionDataset
from cockpit.data.errors import DatasetError
from cockpit.data.transforms import eval_transform, train_transform


class SkippedSample(NamedTuple):
    """A sample that could not be read: dataset index, image path (if known), error text."""

    index: int
    path: str | None
    message: str


class Batch(NamedTuple):
    """What the training loader yields: images, targets, and the samples it had to skip."""

    images: tuple
    targets: tuple
    skipped: tuple


def collate_fn(batch):
    """The lesson's collate: ``(images, targets)`` as tuples; images may differ in size."""
    return tuple(zip(*batch))


def collate_skipping(batch) -> Batch:
    """Collate for :class:`SkippingDataset` items: good samples batched, failures listed."""
    # None is dropped too, for datasets that signal a bad sample that way themselves.
    good = [item for item in batch if item is not None and not isinstance(item, SkippedSample)]
    skipped = tuple(item for item in batch if isinstance(item, SkippedSample))
    images, targets = (tuple(zip(*good)) if good else ((), ()))
    return Batch(images=tuple(images), targets=tuple(targets), skipped=skipped)


class SkippingDataset(Dataset):
    """Returns a :class:`SkippedSample` instead of raising when a sample cannot be read.

    Any ``Exception`` from the wrapped ``__getitem__`` counts: a file deleted or truncated
    mid-run, a file that is not an image, a user's dataset raising. The engine should
    stop when nothing at all can be read (a whole epoch of skips), since that is a bug
    rather than a bad file. Other attributes are looked up on the wrapped dataset.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            return self.dataset[index]
        except Exception as exc:
            return SkippedSample(index=int(index), path=self._path(index), message=f"{type(exc).__name__}: {exc}")

    def _path(self, index: int) -> str | None:
        getter = getattr(self.dataset, "image_path", None)
        try:
            return getter(index) if callable(getter) else None
        except Exception:
            return None

    def __getattr__(self, name: str) -> Any:
        # Guard: during unpickling in a worker, ``dataset`` is not set yet.
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def excluded_indices(preflight: dict | None, split: str) -> frozenset[int]:
    """Dataset indices the pre-flight found unreadable in ``split`` and left out of training
    (``preflight.json``: the ``unreadable_images`` verdict's ``data.excluded``)."""
    for verdict in (preflight or {}).get("verdicts", []):
        if verdict.get("rule") == "unreadable_images" and verdict.get("split") == split:
            excluded = (verdict.get("data") or {}).get("excluded") or []
            return frozenset(int(i) for i in excluded if isinstance(i, int))
    return frozenset()


def _required(config, key: str) -> Path:
    value = getattr(config.data, key)
    path = config.resolve_path(value)
    if path is None:
        raise DatasetError(f"data.{key} is not set")
    return path


def build_dataset(config, split: str, train: bool) -> DetectionDataset:
    """The ``split`` ("train" or "val") dataset of ``config``, with the train or eval transform."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    transform = train_transform(config.augment) if train else eval_transform()
    fmt = config.data.format
    classes = config.data.classes
    if fmt == "coco":
        from cockpit.data.coco import CocoDataset

        ann_file = _required(config, split)
        if not ann_file.is_file():
            raise DatasetError(f"data.{split}: COCO annotation file not found: {ann_file}")
        images_dir = config.resolve_path(getattr(config.data, f"{split}_images"))
        if images_dir is not None and not images_dir.is_dir():
            raise DatasetError(f"data.{split}_images: folder not found: {images_dir}")
        return CocoDataset(ann_file, classes, images_dir=images_dir, transform=transform)
    if fmt == "masks":
        from cockpit.data.masks import MasksDataset

        root = _required(config, split)
        if not root.is_dir():
            raise DatasetError(f"data.{split}: masks dataset folder not found: {root}")
        return MasksDataset(root, classes, transform=transform)
    if fmt == "module":
        from cockpit.data.module import ModuleDataset

        spec = getattr(config.data, split)
        if not spec:
            raise DatasetError(f"data.{split} is not set (expected 'module_name:ClassName')")
        kwargs = getattr(config.data, f"{split}_args")
        return ModuleDataset.from_spec(spec, config.base_dir, kwargs, classes, transform=transform)
    raise DatasetError(f"unknown data.format {fmt!r}")  # the schema forbids this; kept for safety


def seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy in a worker from torch's per-worker seed.

    torch already seeds each worker (base seed from the loader's generator + worker id);
    random/numpy are not, so augmentation written with them would repeat across workers.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_loader(dataset: Dataset, config, train: bool, device_is_cuda: bool, seed: int = 0) -> DataLoader:
    """A DataLoader over ``SkippingDataset(dataset)`` that yields :class:`Batch` items."""
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    workers = int(config.data.num_workers)
    return DataLoader(
        SkippingDataset(dataset),
        batch_size=int(config.data.batch_size),
        shuffle=bool(train),
        num_workers=workers,
        collate_fn=collate_skipping,
        pin_memory=bool(device_is_cuda),
        drop_last=False,
        generator=generator,
        worker_init_fn=seed_worker if workers > 0 else None,
        persistent_workers=False,
    )


def reseed_loader(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make ``epoch``'s shuffle order and worker seeds a function of ``(seed, epoch)`` only."""
    if loader.generator is not None:
        # The sampler holds the same generator object, so this reseeds the shuffle too.
        loader.generator.manual_seed(int(seed) * 100_003 + int(epoch))
