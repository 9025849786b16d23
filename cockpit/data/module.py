"""The ``module`` format: your own tutorial-style ``torch.utils.data.Dataset``.

``data.train = "my_data:PennFudan"`` imports ``my_data`` from the config file's folder
(which is put on ``sys.path``) and builds ``PennFudan(**data.train_args)``. Its
``__getitem__`` returns ``(image, target)`` as in torchvision's detection tutorial:

- ``image``: a PIL image, a CHW tensor (uint8 is scaled to [0, 1]; float is left as it
  is -- the pre-flight check flags 0-255 floats) or an HWC numpy array;
- ``target``: ``boxes`` (N, 4) xyxy pixels, ``labels`` int64 1..K, optionally ``area``
  and ``iscrowd``. Any ``image_id`` it returns is ignored: the adapter uses the sample
  index, so ids are unique even when the user's are not.

The user's dataset should not apply its own flip: cockpit's v2 transforms (which move
the boxes with the image) are applied on top.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from cockpit.data.base import DetectionDataset, SampleInfo
from cockpit.data.errors import DatasetError
from cockpit.data.transforms import apply_transform


def import_dataset_class(spec: str, base_dir: str | Path):
    """The class named by ``"module_name:ClassName"``, importable from ``base_dir``."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise DatasetError(f"module dataset must be named 'module_name:ClassName', got {spec!r}")
    base = str(Path(base_dir).resolve())
    if base not in sys.path:
        # Workers are forked with this sys.path, so they can unpickle the user's class too.
        sys.path.insert(0, base)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.split(".")[0] == exc.name.split(".")[0]:
            raise DatasetError(f"cannot import module {module_name!r} for {spec!r}: no {module_name}.py in {base} or on the Python path") from exc
        raise DatasetError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:  # a bug in the user's module: show it, not a traceback
        raise DatasetError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise DatasetError(f"module {module_name!r} ({getattr(module, '__file__', '?')}) has no class {class_name!r}")
    return cls


def _target_tensors(target: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
        raise TypeError("the dataset's target must be a dict with 'boxes' and 'labels'")
    boxes = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
    out = {"boxes": boxes, "labels": torch.as_tensor(target["labels"], dtype=torch.int64).reshape(-1)}
    for key, dtype in (("area", torch.float32), ("iscrowd", torch.int64)):
        if target.get(key) is not None:
            out[key] = torch.as_tensor(target[key], dtype=dtype).reshape(-1)
    return out


class ModuleDataset(DetectionDataset):
    """Wraps a user's Dataset instance as a DetectionDataset."""

    def __init__(self, inner: Any, classes: list[str], transform: Callable | None = None, name: str = ""):
        super().__init__(classes, transform)
        self.inner = inner
        self.name = name or type(inner).__name__
        self.repaired_empty_targets: set[int] = set()
        """Indices whose empty ``boxes`` came shaped (0,) and were reshaped to (0, 4)."""
        try:
            self._length = len(inner)
        except TypeError as exc:
            raise DatasetError(f"{self.name} has no __len__; cockpit needs a map-style Dataset") from exc

    @classmethod
    def from_spec(cls, spec: str, base_dir: str | Path, kwargs: dict | None, classes: list[str], transform: Callable | None = None):
        """Import ``spec`` from ``base_dir`` and build it with ``kwargs``."""
        dataset_cls = import_dataset_class(spec, base_dir)
        try:
            inner = dataset_cls(**(kwargs or {}))
        except Exception as exc:
            raise DatasetError(f"{spec}({', '.join(f'{k}={v!r}' for k, v in (kwargs or {}).items())}) failed: {type(exc).__name__}: {exc}") from exc
        return cls(inner, classes, transform, name=spec)

    def __len__(self) -> int:
        return self._length

    def _item(self, index: int):
        item = self.inner[index]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{self.name}[{index}] must return (image, target), got {type(item).__name__}")
        return item

    def image_path(self, index: int) -> str | None:
        own = getattr(self.inner, "image_path", None)
        if callable(own):
            try:
                return str(own(index))
            except Exception:
                return None
        # Tutorial datasets usually keep a list of file names (torchvision's PennFudan: imgs + root).
        imgs = getattr(self.inner, "imgs", None)
        if isinstance(imgs, (list, tuple)) and 0 <= index < len(imgs) and isinstance(imgs[index], (str, Path)):
            root = getattr(self.inner, "root", None)
            return str(Path(root, "PNGImages", imgs[index]) if root and (Path(root) / "PNGImages").is_dir() else imgs[index])
        return None

    def load_image(self, index: int) -> Any:
        return self._item(index)[0]

    def raw_target(self, index: int) -> dict[str, Any]:
        target = self._item(index)[1]
        boxes = target.get("boxes") if isinstance(target, dict) else None
        shape = tuple(getattr(boxes, "shape", None) or (1,))
        if shape != (0, 4) and math.prod(shape) == 0:
            # Reshaped below (torchvision would raise); the pre-flight names it as a warning.
            self.repaired_empty_targets.add(index)
        return {**_target_tensors(target), "image_id": index}

    def sample_info(self, index: int) -> SampleInfo:
        # A user's dataset offers no cheap size query; callers that need one decode the image.
        return SampleInfo(index=index, image_id=index, path=self.image_path(index), width=None, height=None)

    def __getitem__(self, index: int):
        # One call of the user's __getitem__ per sample (load_image + raw_target would be two).
        image, target = self._item(index)
        return apply_transform(self.transform, image, {**_target_tensors(target), "image_id": index})
