"""What cockpit's per-step extras cost next to one training step, timed in one process.

Row 1 of BENCHMARKS.md compares whole processes, and on this VM fresh processes differ by
a few percent. Each extra timed here runs on the same model and batch in one process, so
that spread does not enter. The script prints the median of each as one JSON line:
- a training step (forward, backward, SGD step; one batch of the sample) with the engine's
  SGD (torch's fused kernel on a CPU, ``cockpit/engine/optimizer.py``);
- the SGD step alone, on the fused kernel and on torch's default (what the lesson's loop
  and bench/bare_loop.py use), with the same gradients;
- the grad norm cockpit takes every step;
- the NaN-rewind snapshot (every ``SNAPSHOT_EVERY`` steps);
- the training thread's part of the checkpoint at each epoch end (an epoch of the sample's
  train split): the finiteness check and the host copy; the write runs on its own thread;
- the eval-mode probe (``EvalProbeHook``'s images, at its interval).

Each extra is also given as a share of the steps between two of its runs. Not part of
``run_all.py``; bench/notes.md quotes it.

    python bench/step_extras.py [ARCH]     # default fasterrcnn_mobilenet_v3_large_320_fpn
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Callable

import common

def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(arch: str) -> dict:
    import torch

    from cockpit.config.loader import load_config
    from cockpit.data.loader import build_dataset, collate_fn
    from cockpit.engine.builtin_hooks import EvalProbeHook
    from cockpit.engine.checkpoint import all_finite
    from cockpit.engine.model import build_model
    from cockpit.engine.optimizer import build_optimizer
    from cockpit.engine.recovery import SNAPSHOT_EVERY, cpu_copy
    from cockpit.engine.step import grad_total_norm

    config = load_config(common.SAMPLE, [f"model.arch={arch}"])
    model = build_model(config).train()
    dataset = build_dataset(config, "train", train=True)
    batch = config.data.batch_size
    images, targets = collate_fn([dataset[i] for i in range(batch)])
    epoch_iters = -(-len(dataset) // batch)
    probe_hook = EvalProbeHook()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, config, torch.device("cpu"))
    default_sgd = torch.optim.SGD(
        params, lr=config.optim.lr, momentum=config.optim.momentum, weight_decay=config.optim.weight_decay
    )

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        sum(model(list(images), list(targets)).values()).backward()
        optimizer.step()

    snapshot: list = [None]

    def take_snapshot() -> None:
        snapshot[0] = cpu_copy({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, snapshot[0])

    def probe() -> None:
        model.eval()
        with torch.no_grad():
            model(list(images[: probe_hook.images]))
        model.train()

    staging: list = [None]

    def checkpoint_copy() -> None:
        # What Checkpointer.save(background=True) does on the training thread.
        if all_finite(model):
            staging[0] = cpu_copy({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, staging[0])

    step()  # warm-up: allocator, optimizer state
    take_snapshot()
    probe()
    slow = "mobilenet" in arch or "resnet" in arch
    step_s = median_seconds(step, 3 if slow else 15)
    norm_s = median_seconds(lambda: grad_total_norm(params, 0.0).item(), 10)
    snapshot_s = median_seconds(take_snapshot, 5)
    checkpoint_s = median_seconds(checkpoint_copy, 5)
    # Both kernels on the gradients the last step left; a learning rate of 0 keeps the
    # weights where they are, and momentum buffers do not change what a step costs.
    for group in optimizer.param_groups + default_sgd.param_groups:
        group["lr"] = 0.0
    default_sgd.step()
    fused_s = median_seconds(optimizer.step, 50)
    default_s = median_seconds(default_sgd.step, 50)
    probe_s = median_seconds(probe, 3)
    extras = {
        "grad_norm": (norm_s, 1),
        "snapshot": (snapshot_s, SNAPSHOT_EVERY),
        "epoch_checkpoint": (checkpoint_s, epoch_iters),
        "eval_probe": (probe_s, probe_hook.every),
    }
    return {
        "bench": "step_extras",
        "arch": arch,
        "threads": torch.get_num_threads(),
        "step_ms": 1000 * step_s,
        "sgd_step_ms": {"fused": 1000 * fused_s, "default": 1000 * default_s},
        "fused": bool(optimizer.param_groups[0]["fused"]),
        "extras": {
            name: {"ms": 1000 * seconds, "every_iters": every, "share": seconds / (every * step_s)}
            for name, (seconds, every) in extras.items()
        },
        "total_share": sum(seconds / (every * step_s) for seconds, every in extras.values()),
    }


if __name__ == "__main__":
    common.emit(measure(sys.argv[1] if len(sys.argv) > 1 else "fasterrcnn_mobilenet_v3_large_320_fpn"))
