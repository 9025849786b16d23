"""What the pre-flight scans for each split: for ``coco`` a torch-free view of the file.

Importing torch and torchvision costs seconds (more than the whole check of a
10,000-image file), and the checks only need the annotations and image headers. So a
``coco`` split is opened as a :class:`CocoSource`: the same pycocotools ``COCO``, the
same validation and error messages as :class:`cockpit.data.coco.CocoDataset`, the same
attributes the extraction reads (``coco``, ``ids``, ``category_to_label``,
``images_dir``), and no torch. Only the few samples pushed through the real pipeline
need it: :meth:`CocoSource.__getitem__` builds the real dataset on first use, and only
for an image that actually opens (a missing or unreadable file fails exactly as the real
dataset would, in ``load_image``, before any transform). ``masks`` and ``module`` splits
are the real datasets: their targets are computed with torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from cockpit.data.coco_json import checked_split, load_coco
from cockpit.data.errors import DatasetError
from cockpit.data.images import open_rgb
from cockpit.progress import ProgressSink


class CocoSource:
    """A ``coco`` split as the pre-flight needs it; the real dataset only on demand.

    ``build_real`` makes the real dataset (with the eval transform) for decoding samples.
    """

    def __init__(
        self,
        ann_file: Path,
        classes: list[str],
        images_dir: Path | None,
        build_real: Callable[[Any], Any],
        progress: ProgressSink | None = None,
    ):
        # The same order of checks and messages as build_dataset + CocoDataset.
        self.classes = list(classes)
        self.ann_file = Path(ann_file)
        self.coco = load_coco(self.ann_file, progress)
        self.images_dir = Path(images_dir) if images_dir is not None else self.ann_file.parent
        self.label_to_category, self.category_to_label, self.ids = checked_split(
            self.coco, self.ann_file, self.images_dir, self.classes
        )
        self._build_real = build_real
        self._real: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, index: int) -> str:
        return str(self.images_dir / self.coco.imgs[self.ids[index]]["file_name"])

    def load_image(self, index: int):
        return open_rgb(self.image_path(index))

    def __getitem__(self, index: int):
        # The real dataset reads the image first too, so a bad file raises the same error here.
        self.load_image(index)
        if self._real is None:
            self._real = self._build_real(self.coco)
        return self._real[index]

    @property
    def torch_loaded(self) -> bool:
        """Whether a sample went through the real pipeline (and so torch was imported)."""
        return self._real is not None


def open_split(config: Any, split: str, progress: ProgressSink | None = None) -> Any:
    """What the pre-flight scans for ``split``: a :class:`CocoSource` for ``coco`` data,
    else the real dataset with the eval transform. Raises :class:`DatasetError` as
    ``build_dataset`` does; ``progress`` hears how far the annotation file's read is."""
    if config.data.format != "coco":
        from cockpit.data.loader import build_dataset  # lazy: pulls in torch/torchvision

        return build_dataset(config, split, train=False)
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    ann_file = config.resolve_path(getattr(config.data, split))
    if ann_file is None:
        raise DatasetError(f"data.{split} is not set")
    if not ann_file.is_file():
        raise DatasetError(f"data.{split}: COCO annotation file not found: {ann_file}")
    images_dir = config.resolve_path(getattr(config.data, f"{split}_images"))
    if images_dir is not None and not images_dir.is_dir():
        raise DatasetError(f"data.{split}_images: folder not found: {images_dir}")

    def build_real(coco: Any) -> Any:
        # As build_dataset's coco branch, reusing the file already loaded.
        from cockpit.data.coco import CocoDataset  # lazy: pulls in torch/torchvision
        from cockpit.data.transforms import eval_transform

        return CocoDataset(ann_file, config.data.classes, images_dir=images_dir, transform=eval_transform(), coco=coco)

    return CocoSource(ann_file, config.data.classes, images_dir, build_real, progress)
