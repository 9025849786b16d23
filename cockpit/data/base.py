"""What every dataset adapter offers the engine, the diagnostics and the previews.

A :class:`DetectionDataset` returns ``(image, target)`` exactly as torchvision's detection
models want it: ``image`` a float32 CHW tensor in [0, 1], ``target`` a dict with ``boxes``
(float32 (N, 4) xyxy pixels), ``labels`` (int64 (N,), 1..K; 0 is background),
``image_id`` (int), ``area`` and ``iscrowd``.

Besides ``__getitem__`` it answers cheap questions without decoding images, so the
pre-flight check can scan 10,000 images in seconds: :meth:`sample_info` and
:meth:`raw_target`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class SampleInfo:
    """Facts about one sample that need no image decode."""

    index: int
    image_id: int
    path: str | None
    width: int | None
    height: int | None


class DetectionDataset(torch.utils.data.Dataset):
    """Base class of the ``coco``, ``masks`` and ``module`` adapters.

    Subclasses implement :meth:`load_image`, :meth:`raw_target` and :meth:`sample_info`;
    ``__getitem__`` applies the transform to both so boxes follow flips.
    """

    classes: list[str]
    """Foreground class names; label ``i`` (1-based) is ``classes[i - 1]``."""
    label_to_category: dict[int, int]
    """Label -> dataset category id (COCO ids; identity 1..K for other formats)."""

    def __init__(self, classes: list[str], transform: Callable | None = None):
        self.classes = list(classes)
        self.transform = transform
        self.label_to_category = {i + 1: i + 1 for i in range(len(classes))}

    # -- what subclasses provide -------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_image(self, index: int) -> Any:  # pragma: no cover - abstract
        """The decoded image (PIL image or CHW tensor); raises OSError if unreadable."""
        raise NotImplementedError

    def raw_target(self, index: int) -> dict[str, Any]:  # pragma: no cover - abstract
        """The untransformed target (``boxes``, ``labels``, ``image_id``, optional ``iscrowd``)."""
        raise NotImplementedError

    def sample_info(self, index: int) -> SampleInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    def image_path(self, index: int) -> str | None:
        """Where sample ``index`` is read from, without touching the disk (``None`` if unknown).

        Used to report unreadable samples, so it must not raise for a deleted file.
        """
        return None

    # -- shared behaviour --------------------------------------------------------------
    def __getitem__(self, index: int):
        from cockpit.data.transforms import apply_transform

        image = self.load_image(index)
        target = self.raw_target(index)
        return apply_transform(self.transform, image, target)

    def index_of_image_id(self, image_id: int) -> int | None:
        """The sample index holding ``image_id`` (built once from ``sample_info``), or None."""
        index = getattr(self, "_index_by_image_id", None)
        if index is None:
            index = {self.sample_info(i).image_id: i for i in range(len(self))}
            self._index_by_image_id = index
        return index.get(int(image_id))

    def coco_api(self):
        """A pycocotools ``COCO`` ground-truth object for evaluation (see ``cockpit.data.coco_gt``).

        Built once from :meth:`raw_target` and cached: it reads every target.
        """
        cached = getattr(self, "_coco_gt", None)
        if cached is None:
            from cockpit.data.coco_gt import coco_from_dataset

            cached = self._coco_gt = coco_from_dataset(self)
        return cached
