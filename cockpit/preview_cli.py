"""``cockpit preview``: the lesson's sanity script -- one sample, its GT boxes drawn, its target.

"Visualize GT boxes on image before any training": prints the image as half-block cells
(any terminal, tmux included) with GT boxes in green, then the target dict and the
``x2 > x1`` / ``y2 > y1`` assertion result, without starting the app.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def print_preview(config, split: str, index: int, width: int | None = None) -> int:
    import torch
    from rich.console import Console

    from cockpit.data.loader import build_dataset
    from cockpit.engine.preview import make_preview
    from cockpit.ui.widgets.preview_panel import render_image

    console = Console()
    dataset = build_dataset(config, split, train=False)
    if not 0 <= index < len(dataset):
        console.print(f"cockpit: --index {index} is outside the {split} split (0..{len(dataset) - 1})")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        event = make_preview(
            None, dataset, index, device=torch.device("cpu"), iteration=0, score_thresh=1.0, out_dir=Path(tmp), split=split
        )
        columns = width or min(shutil.get_terminal_size((80, 24)).columns, 120)
        pixels = render_image(event, columns, rows=max(4, columns // 2), mode="gt")
        if pixels is not None:
            console.print(pixels)
    image, target = dataset[index]
    names = ["background", *config.data.classes]
    console.print(f"{split}[{index}] {dataset.image_path(index)}  image {tuple(image.shape)} {image.dtype}")
    console.print(f"boxes  {target['boxes'].dtype} {tuple(target['boxes'].shape)}")
    for box, label in zip(target["boxes"].tolist(), target["labels"].tolist()):
        name = names[label] if 0 <= label < len(names) else "?"
        console.print(f"  {[round(v, 1) for v in box]}  label {label} ({name})")
    console.print(f"labels {target['labels'].dtype} {target['labels'].tolist()}")
    boxes = target["boxes"]
    ok = bool(((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()) if len(boxes) else True
    console.print("assert boxes x2 > x1 and y2 > y1: " + ("OK" if ok else "FAILED (degenerate boxes)"))
    return 0 if ok else 1
