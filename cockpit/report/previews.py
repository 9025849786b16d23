"""A few val images with ground truth (green) and predicted (red) boxes, as PNG bytes.

First choice: the run's best checkpoint (else its last) is loaded on the CPU and predicts
the first val images that have objects, so every preview shows the model the report is
about, captioned with the checkpoint and its iteration. When that cannot be done (no
checkpoint, no torch, the val data not found), the engine's ``previews/val-<index>``
files are used, each captioned with the iteration it was predicted at; else the last (or
best) COCO results file in ``predictions/`` on the val images of the annotation file.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cockpit.report.rundir import RunDir, finite
from cockpit.runfiles.jsonl import read_json

GT_COLOR = (20, 170, 60)
PRED_COLOR = (220, 40, 40)
PREVIEW_SIDE = 520
"""Previews are scaled to this many pixels on their long side (keeps report.html small)."""


CHECKPOINT_PREVIEWS = 4
"""How many val images the checkpoint predicts for the report."""


@dataclass(frozen=True)
class PreviewImage:
    """One drawn preview for the report."""

    title: str
    png: bytes
    caption: str


def _label_name(label: Any, names: Sequence[str] | dict[int, str]) -> str:
    if isinstance(names, dict):
        return str(names.get(int(label), label)) if isinstance(label, (int, float)) else str(label)
    if not isinstance(label, (int, float)) or not names:
        return str(label)
    label = int(label)
    # Label ids count background as 0; a class list may or may not include it.
    if names[0].lower() in ("__background__", "background"):
        return names[label] if 0 <= label < len(names) else str(label)
    return names[label - 1] if 1 <= label <= len(names) else str(label)


def _valid_box(box: Any) -> list[float] | None:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return None
    values = [finite(v) for v in box]
    if any(v is None for v in values):
        return None
    return values  # type: ignore[return-value]


def _label(draw: Any, corner: tuple[float, float], text: str, color: tuple[int, int, int], font: Any) -> None:
    """White text on a box-coloured tag ending at ``corner``'s y: readable on any image.

    Predictions get the tag above their top edge, GT inside its bottom edge, so the two
    rarely cover each other when a prediction matches its GT box."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 6, bottom - top + 4
    x = corner[0]
    y = max(0.0, corner[1] - h)
    draw.rectangle([x, y, x + w, y + h], fill=color)
    draw.text((x + 3 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)


def draw_boxes(
    image: Any,
    gt_boxes: Sequence[Any],
    gt_labels: Sequence[Any],
    boxes: Sequence[Any],
    labels: Sequence[Any],
    scores: Sequence[Any],
    names: Sequence[str] | dict[int, str],
    score_thresh: float,
) -> tuple[bytes, str]:
    """Draw xyxy boxes on a PIL image (GT green, predictions >= ``score_thresh`` red)."""
    from PIL import ImageDraw, ImageFont

    image = image.convert("RGB")
    # Shrink big images (report size); enlarge small ones (up to 4x) so boxes and labels
    # stay legible -- the synthetic sample images are only a couple of hundred pixels.
    scale = min(4.0, PREVIEW_SIDE / max(image.size))
    if scale != 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 250))
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font only
        font = ImageFont.load_default()
    shown_gt = 0
    for box, label in zip(gt_boxes, list(gt_labels) + [None] * len(gt_boxes)):
        box = _valid_box(box)
        if box is None:
            continue
        x1, y1, x2, y2 = (v * scale for v in box)
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=GT_COLOR, width=width)
        if label is not None:
            _label(draw, (min(x1, x2), max(y1, y2)), _label_name(label, names), GT_COLOR, font)
        shown_gt += 1
    shown_pred = 0
    below = 0
    for box, label, score in zip(boxes, labels, scores):
        box, score_f = _valid_box(box), finite(score)
        if box is None:
            continue
        if score_f is not None and score_f < score_thresh:
            below += 1
            continue
        x1, y1, x2, y2 = (v * scale for v in box)
        left, top = min(x1, x2), min(y1, y2)
        draw.rectangle([left, top, max(x1, x2), max(y1, y2)], outline=PRED_COLOR, width=width)
        text = _label_name(label, names) + (f" {score_f:.2f}" if score_f is not None else "")
        _label(draw, (left, top), text, PRED_COLOR, font)
        shown_pred += 1
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    caption = f"{shown_gt} ground-truth box(es) in green; {shown_pred} prediction(s) with score >= {score_thresh:g} in red"
    if below:
        caption += f" ({below} lower-scored not drawn)"
    return buffer.getvalue(), caption


def _score_thresh(run: RunDir) -> float:
    config = run.config
    try:
        return float(config.eval.score_thresh) if config is not None else 0.5
    except (AttributeError, TypeError, ValueError):
        return 0.5


def _from_engine_previews(run: RunDir, limit: int) -> list[PreviewImage]:
    from PIL import Image, UnidentifiedImageError

    out = []
    thresh = _score_thresh(run)
    default_names = list(run.config.data.classes) if run.config is not None else []
    for preview in run.previews[:limit]:
        data = preview.data
        try:
            with Image.open(preview.png) as image:
                image.load()
                png, caption = draw_boxes(
                    image,
                    data.get("gt_boxes") or [],
                    data.get("gt_labels") or [],
                    data.get("boxes") or [],
                    data.get("labels") or [],
                    data.get("scores") or [],
                    data.get("classes") or default_names,
                    thresh,
                )
        except (OSError, UnidentifiedImageError, ValueError):
            continue
        path = data.get("image_path") or preview.png.name
        when = data.get("iter")
        # These were predicted whenever the image was browsed, not by the final model: say when.
        caption += f"; predicted at iteration {when}" if isinstance(when, int) else "; iteration unknown"
        out.append(PreviewImage(f"val image {preview.index}: {path}", png, caption))
    return out


def _config_dirs(run: RunDir) -> list[Path]:
    """Folders a relative path from the run's config may start from, the likeliest first.

    ``server.json`` names the config's folder (runs started by this version); older runs
    get guesses: the folder above the output folder, the run folder, the working folder."""
    bases: list[Path] = []
    server, _ = read_json(run.path / "server.json")
    if isinstance(server, dict) and isinstance(server.get("config_dir"), str):
        bases.append(Path(server["config_dir"]))
    bases.append(run.path)
    config = run.config
    output_dir = Path(config.run.output_dir) if config is not None else Path("runs")
    if not output_dir.is_absolute():
        # run dir = <config dir>/<output_dir>/<name>-<timestamp>
        depth = len(output_dir.parts) + 1
        if depth <= len(run.path.parents):
            bases.append(run.path.parents[depth - 1])
    bases.append(Path.cwd())
    return bases


def _candidate_paths(run: RunDir, value: str) -> list[Path]:
    """Where a relative path from the config may live (it was relative to the config file)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return [path]
    return [base / path for base in _config_dirs(run)]


def _first_existing(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def _from_predictions(run: RunDir, limit: int) -> tuple[list[PreviewImage], str]:
    """Previews drawn from the best evaluation's saved COCO results on the val images."""
    if not run.predictions:
        return [], "no previews/ and no predictions/ in the run directory"
    config = run.config
    if config is None or config.data.format != "coco" or not config.data.val:
        return [], "predictions exist, but drawing them needs the COCO val annotation file named in the config"
    chosen = _chosen_predictions(run)
    ann_path = _first_existing(_candidate_paths(run, config.data.val))
    if ann_path is None:
        return [], f"the val annotation file {config.data.val} was not found"
    try:
        coco = json.loads(ann_path.read_text(encoding="utf-8"))
        results = json.loads(chosen.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return [], f"cannot read predictions or annotations ({error})"
    if not isinstance(coco, dict) or not isinstance(results, list):
        return [], "predictions or annotations are not in COCO format"
    image_dir = ann_path.parent
    if config.data.val_images:
        image_dir = _first_existing(_candidate_paths(run, config.data.val_images)) or image_dir
    out, unreadable = _draw_coco_results(coco, results, image_dir, _score_thresh(run), limit)
    note = f"drawn from predictions/{chosen.name} on the val images of {ann_path.name}"
    if unreadable and out:
        # Skipped and named, as the loaders do: a deleted val file must not hide the rest.
        shown = ", ".join(unreadable[:3]) + (f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else "")
        note += f"; skipped {len(unreadable)} unreadable image(s): {shown}"
    if not out:
        note = f"the val images named in {ann_path.name} could not be opened under {image_dir}"
    return out, note


def _chosen_predictions(run: RunDir) -> Path:
    """The best evaluation's results file when it is there, else the newest."""
    from cockpit.report.analysis import best_eval

    best = best_eval(run)
    if best is not None and isinstance(best.get("iter"), int):
        named = run.path / "predictions" / f"eval-iter{best['iter']:06d}.json"
        if named.is_file():
            return named
    return run.predictions[-1]


def _xyxy(bbox: Any) -> list[float] | None:
    box = _valid_box(bbox)
    return None if box is None else [box[0], box[1], box[0] + box[2], box[1] + box[3]]


def _draw_coco_results(
    coco: dict, results: list, image_dir: Path, thresh: float, limit: int
) -> tuple[list[PreviewImage], list[str]]:
    """Up to ``limit`` val images with GT and predicted boxes, and the files that would not open."""
    from PIL import Image, UnidentifiedImageError

    names = {int(c["id"]): str(c.get("name", c["id"])) for c in coco.get("categories", []) if "id" in c}
    gt: dict[Any, list[dict]] = {}
    for ann in coco.get("annotations", []):
        gt.setdefault(ann.get("image_id"), []).append(ann)
    preds: dict[Any, list[dict]] = {}
    for det in results:
        if isinstance(det, dict):
            preds.setdefault(det.get("image_id"), []).append(det)
    out: list[PreviewImage] = []
    unreadable: list[str] = []
    for info in coco.get("images", []):
        if len(out) >= limit:
            break
        image_id = info.get("id")
        if image_id not in gt and image_id not in preds:
            continue
        g, p = gt.get(image_id, []), preds.get(image_id, [])
        try:
            with Image.open(image_dir / str(info.get("file_name", ""))) as image:
                image.load()
                png, caption = draw_boxes(
                    image,
                    [_xyxy(a.get("bbox")) for a in g],
                    [a.get("category_id") for a in g],
                    [_xyxy(d.get("bbox")) for d in p],
                    [d.get("category_id") for d in p],
                    [d.get("score") for d in p],
                    names,
                    thresh,
                )
        except (OSError, UnidentifiedImageError, ValueError):
            unreadable.append(str(info.get("file_name", "")))
            continue
        out.append(PreviewImage(f"val image {image_id}: {info.get('file_name', '')}", png, caption))
    return out, unreadable


def _checkpoint(run: RunDir) -> Path | None:
    for name in ("best.pt", "last.pt"):
        path = run.path / "checkpoints" / name
        if path.is_file():
            return path
    return None


def _from_checkpoint(run: RunDir, limit: int) -> tuple[list[PreviewImage], str]:
    """The checkpoint's own predictions on the first ``limit`` val images with objects."""
    checkpoint = _checkpoint(run)
    if checkpoint is None:
        return [], "no checkpoint to predict with"
    if run.config is None:
        return [], "the run's config cannot be read"
    base = next((b for b in _config_dirs(run) if (b / str(run.config.data.val or "")).exists()), None)
    if base is None:
        return [], f"the val data {run.config.data.val} was not found"
    try:
        import torch

        from cockpit.data.loader import build_dataset
        from cockpit.engine.checkpoint import load
        from cockpit.engine.model import build_model
    except ImportError as error:
        return [], f"predicting needs torch ({error})"
    # The run's own weights come from the checkpoint: build the bare architecture.
    config = run.config.copy_with({"model.weights": "none"}).with_base_dir(base)
    state = load(checkpoint, map_location="cpu")
    model = build_model(config)
    model.load_state_dict(state["model"])
    model.eval()
    iteration = state.get("iteration")
    dataset = build_dataset(config, "val", train=False)
    names = list(config.data.classes)
    thresh = _score_thresh(run)
    out: list[PreviewImage] = []
    for index in range(len(dataset)):
        if len(out) >= limit:
            break
        try:
            if len(dataset.raw_target(index)["boxes"]) == 0:
                continue
            image, target = dataset[index]
        except Exception:  # noqa: BLE001 - an unreadable image is skipped, the pre-flight reports it
            continue
        with torch.no_grad():
            output = model([image])[0]
        from PIL import Image

        array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        png, caption = draw_boxes(
            picture, target["boxes"].tolist(), target["labels"].tolist(), output["boxes"].tolist(),
            output["labels"].tolist(), output["scores"].tolist(), names, thresh,
        )
        caption += f"; predicted by checkpoints/{checkpoint.name} (iteration {iteration})"
        out.append(PreviewImage(f"val image {index}: {dataset.image_path(index) or ''}", png, caption))
    if not out:
        return [], "no readable val image with objects"
    return out, f"predicted by checkpoints/{checkpoint.name} (iteration {iteration}) on the first val images with objects"


def preview_images(run: RunDir, limit: int = CHECKPOINT_PREVIEWS) -> tuple[list[PreviewImage], str]:
    """Up to ``limit`` drawn previews, and a sentence saying where they come from (or why none)."""
    try:
        images, why_not = _from_checkpoint(run, limit)
    except Exception as error:  # noqa: BLE001 - a damaged checkpoint falls back to the saved previews
        first = (str(error).splitlines() or [""])[0]
        first = first if len(first) <= 120 else first[:119] + "…"  # torch's load errors run to pages
        images, why_not = [], f"the checkpoint could not predict ({type(error).__name__}: {first})"
    if images:
        return images, why_not
    if run.previews:
        images = _from_engine_previews(run, limit)
        if images:
            return images, f"from previews/ (the engine's preview predictions; {why_not})"
    images, note = _from_predictions(run, limit)
    return images, f"{note}; {why_not}"
