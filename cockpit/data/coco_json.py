"""The COCO annotation file without torch: loading it (pycocotools, errors made clear) and
matching its categories to the config's classes.

Kept apart from :mod:`cockpit.data.coco` (the training adapter, which needs torch) so
``cockpit check`` can read a COCO file and its image headers without importing torch.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Callable

from cockpit.data import json_parse
from cockpit.data.errors import DatasetError


def load_coco(ann_file: str | Path, progress: Callable[[Any], None] | None = None):
    """A pycocotools ``COCO`` for ``ann_file``, with its prints silenced and errors made clear.

    The file is read in chunks and parsed element by element (:mod:`cockpit.data.json_parse`)
    so a large one reports how far it has come to ``progress`` (a :mod:`cockpit.progress`
    sink) and never holds the GIL for the whole parse; then what ``COCO.__init__`` does
    after its ``json.load``: a dict check and pycocotools' own ``createIndex``.
    """
    from pycocotools.coco import COCO

    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise DatasetError(f"COCO annotation file not found: {ann_file}")
    try:
        raw = _read_with_progress(ann_file, progress)
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            dataset = _parse_with_progress(raw, ann_file, progress)
            assert isinstance(dataset, dict), f"annotation file format {type(dataset)} not supported"
            coco.dataset = dataset
            coco.createIndex()
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise DatasetError(f"{ann_file} is not valid JSON: {exc}") from exc
    except (KeyError, TypeError, AssertionError) as exc:
        raise DatasetError(f"{ann_file} is not a COCO annotation file ({type(exc).__name__}: {exc})") from exc
    if "images" not in coco.dataset or "categories" not in coco.dataset:
        raise DatasetError(f"{ann_file} is not a COCO annotation file: it needs 'images' and 'categories' lists")
    return coco


_CHUNK = 8 << 20


def _parse_with_progress(raw: bytes, path: Path, progress: Callable[[Any], None] | None) -> Any:
    """``json.loads(raw)``, in steps that let the cockpit's thread run (``json_parse``),
    saying how far it has come when the file is large enough to take a while."""
    text = json_parse.decode(raw)
    if progress is None or not json_parse.stepwise(text):
        return json_parse.loads(text)
    from cockpit.engine.events import ProgressTask
    from cockpit.progress import ProgressMeter

    # Counted in bytes of the file, as its read was: the parse's characters scaled to them.
    scale = len(raw) / len(text)
    meter = ProgressMeter(ProgressTask.ANNOTATIONS, len(raw), progress, detail=f"bytes of {path.name} parsed")
    try:
        return json_parse.loads(text, lambda done, total: meter.update(int(done * scale)))
    finally:
        meter.finish()


def _read_with_progress(path: Path, progress: Callable[[Any], None] | None) -> bytes:
    if progress is None:
        return path.read_bytes()
    from cockpit.engine.events import ProgressTask
    from cockpit.progress import ProgressMeter

    size = path.stat().st_size
    meter = ProgressMeter(ProgressTask.ANNOTATIONS, size, progress, detail=f"bytes of {path.name}")
    parts = []
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            parts.append(chunk)
            meter.advance(len(chunk))
    meter.finish()
    return b"".join(parts)


def map_categories(categories: list[dict[str, Any]], classes: list[str], source: str = "") -> dict[int, int]:
    """Label (1..K, in ``classes`` order) -> COCO category id, matched by name.

    Raises :class:`DatasetError` when names differ either way or repeat in the JSON.
    """
    by_name: dict[str, int] = {}
    repeated = []
    for cat in categories:
        name = str(cat["name"])
        if name in by_name:
            repeated.append(name)
        by_name[name] = int(cat["id"])
    where = f" in {source}" if source else ""
    if repeated:
        raise DatasetError(f"category names repeat{where}: {', '.join(sorted(set(repeated)))}")
    missing = [c for c in classes if c not in by_name]
    extra = [n for n in by_name if n not in classes]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"not in the JSON: {', '.join(missing)}")
        if extra:
            parts.append(f"in the JSON but not in data.classes: {', '.join(extra)}")
        raise DatasetError(
            f"data.classes does not match the COCO categories{where} ({'; '.join(parts)}). "
            f"The JSON's categories are: {', '.join(by_name) or '(none)'}"
        )
    return {label: by_name[name] for label, name in enumerate(classes, start=1)}


def checked_split(coco, ann_file: Path, images_dir: Path, classes: list[str]) -> tuple[dict[int, int], dict[int, int], list[int]]:
    """(label -> category id, category id -> label, sorted image ids) of one COCO split,
    after the checks both the dataset and the pre-flight's torch-free view make, in one
    order with one set of messages: the images folder exists, the classes map, and every
    annotation names a known category."""
    if not images_dir.is_dir():
        raise DatasetError(f"COCO images folder not found: {images_dir}")
    label_to_category = map_categories(coco.dataset["categories"], classes, str(ann_file))
    category_to_label = {cat: label for label, cat in label_to_category.items()}
    unknown = sorted({a["category_id"] for a in coco.anns.values()} - set(category_to_label))
    if unknown:
        raise DatasetError(f"{ann_file}: annotations use category ids not in 'categories': {unknown}")
    return label_to_category, category_to_label, sorted(coco.imgs)
