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

# How the box head learns. Every field is live: edit it in the Config pane, ctrl+s, and it
# applies at the next iteration. The loss keys (loss_box_reg, ...) keep torchvision's names.
[loss]
box = "smooth_l1"        # smooth_l1 | l1 | giou | diou | ciou -- the box head's regression loss
box_beta = 0.1111111111111111   # smooth_l1 only: torchvision uses 1/9
classifier = "ce"        # ce | focal (softmax focal loss) -- the box head's classification loss
focal_gamma = 2.0        # focal only: 0 = plain cross-entropy
hard_negatives = false   # OHEM: sample the box head's background RoIs by loss, not at random

# Which anchors / proposals count as object or background, and how many are sampled.
# Defaults are torchvision's; the Labels pane (6) shows what they produce. All live.
[sampler]
# rpn_batch_size_per_image = 256   # anchors per image for the RPN loss; unset = the model's own
rpn_positive_fraction = 0.5        # at most this share of them positive
rpn_fg_iou_thresh = 0.7            # anchor IoU >= this with a GT box: positive
rpn_bg_iou_thresh = 0.3            # anchor IoU < this with every GT box: negative
# roi_batch_size_per_image = 512   # RoIs per image for the box head; unset = the model's own (tiny: 64)
roi_positive_fraction = 0.25       # at most this share of them foreground
roi_fg_iou_thresh = 0.5            # proposal IoU >= this: foreground
roi_bg_iou_thresh = 0.5            # proposal IoU < this: background
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
