"""The bare torchvision training loop that cockpit's engine is measured against.

Written from the lesson's recipe (reference/detector-training-lesson.txt) with nothing
of cockpit's engine: a COCO dataset read with json + PIL, the lesson's v2 transforms
(photometric distort, horizontal flip, ToImage, ToDtype), ``collate_fn = tuple(zip(...))``,
SGD + StepLR stepped per epoch, and the torchvision-reference habit of one ``loss.item()``
per iteration with a finiteness check. It shares with cockpit only what must be the same
for a fair comparison: the config (data, batch size, num_workers, seed, augmentation
probabilities, optimizer settings) and the model from ``build_model(config, instrument=False)``:
torchvision's detector without the label-assignment telemetry cockpit adds to it. Its
SGD is ``torch.optim.SGD`` as the lesson builds it (torch's default kernel, a loop over
the parameters on a CPU); cockpit's runs on the fused kernel.

Prints ``it N`` every ``run.log_every`` iterations (flushed), the same prefix cockpit's
headless printer uses, so the benches time both the same way. On CUDA it
trains on the device (``run.device``), under ``torch.autocast`` + ``GradScaler`` when
``optim.amp`` is on (the references' ``--amp``), and each log line ends with the CUDA
allocator's peak so far (``peak_mb``), which ``gpu_check.py`` compares with cockpit's
memory pane.

    python bench/bare_loop.py CONFIG [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2 as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors

from cockpit.config import load_config
from cockpit.engine.environment import resolve_device
from cockpit.engine.model import build_model


class CocoBoxes(Dataset):
    """COCO JSON -> (image, {"boxes", "labels", "image_id"}), labels 1..K in ``classes`` order."""

    def __init__(self, ann_file: Path, images_dir: Path, classes: list[str], transforms):
        data = json.loads(ann_file.read_text())
        by_name = {c["name"]: c["id"] for c in data["categories"]}
        self.label_of = {by_name[name]: label for label, name in enumerate(classes, start=1)}
        self.images = sorted(data["images"], key=lambda im: im["id"])
        self.anns: dict[int, list] = {}
        for ann in data["annotations"]:
            if not ann.get("iscrowd", 0):
                self.anns.setdefault(ann["image_id"], []).append(ann)
        self.images_dir = images_dir
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        info = self.images[index]
        image = Image.open(self.images_dir / info["file_name"]).convert("RGB")
        anns = self.anns.get(info["id"], [])
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float32)
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes.reshape(-1, 4), format="XYXY", canvas_size=(image.height, image.width)),
            "labels": torch.tensor([self.label_of[a["category_id"]] for a in anns], dtype=torch.int64),
            "image_id": info["id"],
        }
        return self.transforms(image, target)


def collate_fn(batch):
    return tuple(zip(*batch))


class BareLoop:
    """The loop's state (data, model, optimizer, schedule), built from a config; ``steps()``
    trains. Importable, so ``engine_overhead.py`` can run it in the same process as the
    engine it is compared with."""

    def __init__(self, config) -> None:
        self.config = config
        seed = config.run.seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        train_tf = T.Compose(
            [
                T.RandomPhotometricDistort(p=config.augment.photometric),
                T.RandomHorizontalFlip(p=config.augment.hflip),
                T.ToImage(),
                T.ToDtype(torch.float32, scale=True),
            ]
        )
        data = config.data
        dataset = CocoBoxes(config.resolve_path(data.train), config.resolve_path(data.train_images), data.classes, train_tf)
        self.loader = DataLoader(
            dataset,
            batch_size=data.batch_size,
            shuffle=True,
            num_workers=data.num_workers,
            collate_fn=collate_fn,
            generator=torch.Generator().manual_seed(seed),
        )

        self.device = resolve_device(config.run.device)
        self.amp = config.optim.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        # torchvision's model without cockpit's telemetry and RoI heads (their cost is cockpit's).
        self.model = build_model(config, instrument=False).to(self.device)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        optim = config.optim
        self.optimizer = torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
        self.lr_scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=optim.step_size, gamma=optim.gamma)

    def steps(self):
        """Train; yields ``(iteration, epoch, loss)`` after each iteration (epoch from 1).
        Raises ``FloatingPointError`` on a non-finite loss, as the references stop."""
        device, amp, scaler = self.device, self.amp, self.scaler
        iteration = 0
        max_iters = self.config.run.max_iters or math.inf
        for epoch in range(self.config.run.epochs):
            for images, targets in self.loader:
                images = [image.to(device, non_blocking=True) for image in images]
                targets = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
                with torch.autocast(device_type=device.type, enabled=amp):
                    loss_dict = self.model(images, targets)
                    losses = sum(loss_dict.values())
                loss_value = losses.item()
                if not math.isfinite(loss_value):
                    raise FloatingPointError(f"loss is {loss_value}, stopping")
                self.optimizer.zero_grad()
                scaler.scale(losses).backward()
                scaler.step(self.optimizer)
                scaler.update()
                iteration += 1
                yield iteration, epoch + 1, loss_value
                if iteration >= max_iters:
                    return
            self.lr_scheduler.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    loop = BareLoop(config)
    try:
        for iteration, epoch, loss_value in loop.steps():
            if iteration % config.run.log_every == 0:
                peak = torch.cuda.max_memory_allocated(loop.device) / 2**20 if loop.device.type == "cuda" else 0.0
                print(f"it {iteration} ep {epoch} loss {loss_value:.4f} peak_mb {peak:.1f}", flush=True)
    except FloatingPointError as error:
        print(error, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
