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
    image, target = dataset[index]
    names = ["background", *config.data.classes]
    lines = [
        f"{split}[{index}] {dataset.image_path(index)}  image {tuple(image.shape)} {image.dtype}",
        f"boxes  {target['boxes'].dtype} {tuple(target['boxes'].shape)}",
    ]
    for box, label in zip(target["boxes"].tolist(), target["labels"].tolist()):
        name = names[label] if 0 <= label < len(names) else "?"
        lines.append(f"  {[round(v, 1) for v in box]}  label {label} ({name})")
    lines.append(f"labels {target['labels'].dtype} {target['labels'].tolist()}")
    boxes = target["boxes"]
    ok = bool(((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()) if len(boxes) else True
    lines.append("assert boxes x2 > x1 and y2 > y1: " + ("OK" if ok else "FAILED (degenerate boxes)"))
    with tempfile.TemporaryDirectory() as tmp:
        event = make_preview(
            None, dataset, index, device=torch.device("cpu"), iteration=0, score_thresh=1.0, out_dir=Path(tmp), split=split
        )
        terminal = shutil.get_terminal_size((80, 24))
        columns = width or min(terminal.columns, 120)
        # Image and text fit one screen (the text as the terminal wraps it, and a prompt
        # line): the image keeps its aspect inside columns x rows.
        text_rows = sum(max(1, -(-len(line) // max(1, terminal.columns))) for line in lines)
        rows = max(4, min(columns // 2, terminal.lines - text_rows - 1))
        pixels = render_image(event, columns, rows=rows, mode="gt")
        if pixels is not None:
            console.print(pixels)
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0 if ok else 1
