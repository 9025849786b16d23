"""``cockpit init``: a commented starter config plus a small synthetic dataset beside it.

The config passes ``cockpit check`` as written, because the data it names is generated
next to it (the same deterministic shapes as the bundled sample).
"""

from __future__ import annotations

from pathlib import Path

STARTER = '''\
# cockpit run config. Paths are relative to this file. `cockpit check THIS_FILE` validates it.

[run]
name = "shapes"          # run folder prefix: <output_dir>/<name>-<timestamp>/
output_dir = "runs"
seed = 0
device = "auto"          # auto | cpu | cuda | cuda:N
epochs = 20
max_iters = 0            # > 0: stop after this many iterations in total
log_every = 10           # iterations between metric records
tensorboard = false      # true: TensorBoard event files beside metrics.jsonl (pip install '.[tensorboard]')

[data]
format = "coco"          # coco | masks | module
classes = ["circle", "square"]   # label 1, 2, ...; 0 is background (num_classes = 3)
train = "shapes/train.json"      # coco: annotation JSON; masks: root; module: "module:Class"
val = "shapes/val.json"
train_images = "shapes/train/PNGImages"
val_images = "shapes/val/PNGImages"
batch_size = 4
num_workers = 0

[model]
arch = "tiny"            # fasterrcnn_resnet50_fpn | fasterrcnn_resnet50_fpn_v2 |
                         # fasterrcnn_mobilenet_v3_large_fpn | fasterrcnn_mobilenet_v3_large_320_fpn | tiny
weights = "none"         # none | default (torchvision COCO weights, if cached) | checkpoint path
box_score_thresh = 0.05

[optim]
lr = 0.02                # torchvision: 0.02 per 16 images; scale with the global batch
momentum = 0.9
weight_decay = 0.0005
step_size = 30           # StepLR period in epochs
gamma = 0.1
warmup_iters = 50
grad_clip = 0.0          # 0 = off
amp = false              # mixed precision (CUDA only)

[eval]
every_epochs = 5         # 0 = only at the end and on demand
score_thresh = 0.5

[augment]
hflip = 0.5
photometric = 0.5
'''


def write_starter(path: Path, *, force: bool = False) -> list[Path]:
    """Write the config (refusing to overwrite unless ``force``) and its dataset."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER, encoding="utf-8")
    written = [path]
    data = path.parent / "shapes"
    if not (data / "train.json").exists():
        from cockpit.data.synthetic import generate

        generate(data)
        written.append(data)
    return written
