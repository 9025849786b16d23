"""What label-assignment telemetry costs per training step (target: at most 1%).

In one process, on the same batch of the bundled sample with the ``tiny`` model, the
training step (``engine/step.py``, forward + backward + SGD) of three models with the
same weights: stock torchvision's ``FasterRCNN``; cockpit's build with its telemetry
paused (the recording pieces in place but adding nothing); and cockpit's build recording
(the counts ride in the step's one host transfer). "overhead" is recording vs stock,
"recording_overhead" recording vs paused (the telemetry's own work). Blocks of steps
rotate through the three so drift hits all alike; each side's fastest block counts
(interference on a shared machine only ever adds time).

    python bench/telemetry_cost.py [--steps 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import torch

import common


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3 if common.QUICK else 6)
    args = parser.parse_args()

    from cockpit.config import load_config
    from cockpit.data.loader import build_dataset
    from cockpit.engine.model import _build_tiny, build_model
    from cockpit.engine.step import train_step

    torch.set_num_threads(1)
    config = load_config(common.SAMPLE)
    dataset = build_dataset(config, "train", train=False)
    images, targets = (list(v) for v in zip(*[dataset[i] for i in range(config.data.batch_size)]))
    ours = build_model(config)
    stock = _build_tiny(config.data.num_classes, config.model)
    stock.load_state_dict(ours.state_dict(), strict=True)
    paused = build_model(config)
    paused.load_state_dict(ours.state_dict(), strict=True)
    paused.cockpit_telemetry.enabled = False
    models = {"stock": stock, "paused": paused, "cockpit": ours}
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9) for name, m in models.items()}
    scaler = torch.amp.GradScaler("cpu", enabled=False)

    def block(name: str) -> float:
        model, optimizer = models[name], optimizers[name]
        model.train()
        started = time.perf_counter()
        for _ in range(args.steps):
            train_step(model, optimizer, scaler, images, targets, accumulation=1, grad_clip=0.0, amp=False, device_type="cpu")
        return (time.perf_counter() - started) / args.steps

    for name in models:  # warm-up: allocator, first-call paths
        block(name)
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for round_ in range(args.rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            times[name].append(block(name))
    best = {name: min(values) for name, values in times.items()}
    common.emit({
        "bench": "telemetry_cost",
        "stock_ms_per_step": 1000 * best["stock"],
        "cockpit_ms_per_step": 1000 * best["cockpit"],
        "paused_ms_per_step": 1000 * best["paused"],
        "overhead": best["cockpit"] / best["stock"] - 1,
        "recording_overhead": best["cockpit"] / best["paused"] - 1,
        "blocks_ms": {name: [round(1000 * v, 2) for v in values] for name, values in times.items()},
        "steps_per_block": args.steps,
    })


if __name__ == "__main__":
    main()
