"""Engine overhead: ``cockpit run --headless`` against a bare torchvision loop.

Both sides train the same model from the same config (data, batch size, augmentation
probabilities, SGD recipe, seed, ``num_workers``) as separate processes, alternating
A/B several times. Each process prints a line every ``log_every`` iterations; the parent
timestamps the lines and takes the per-iteration cost between two of them, so start-up,
pre-flight and the end of the run cancel out. For ``tiny`` the window spans four whole
epochs (four epoch-end checkpoints, two NaN-rewind snapshots, one eval-mode probe); the
mobilenet model is ~30x slower per iteration on 2 CPU cores, so its window is a few
iterations inside the first epoch.

The ratio is cockpit's throughput over the bare loop's, from each side's least disturbed
(fastest) run: on a shared machine interference only ever adds time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import common

# arch -> (window marks, log_every, repeats)
PLANS = {
    "tiny": ((10, 70) if common.QUICK else (10, 130), 10, 1 if common.QUICK else 3),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ((2, 4) if common.QUICK else (2, 6), 2, 1 if common.QUICK else 2),
}


def measure(arch: str, marks: tuple[int, int], log_every: int, repeats: int, tmp: Path) -> dict:
    bare_cost, cockpit_cost, pairs = [], [], []
    for rep in range(repeats):
        items = common.overrides(tmp / f"{arch}-{rep}", arch, marks[1] + 1000) + [f"run.log_every={log_every}"]
        bare = common.timed_iterations(
            [common.PYTHON, str(common.REPO / "bench" / "bare_loop.py"), str(common.SAMPLE)] + common.set_args(items), marks
        )
        cockpit = common.timed_iterations(common.COCKPIT + ["run", str(common.SAMPLE), "--headless"] + common.set_args(items), marks)
        b, c = common.per_iteration(bare, marks), common.per_iteration(cockpit, marks)
        bare_cost.append(b)
        cockpit_cost.append(c)
        pairs.append(b / c)
    return {
        "ratio": min(bare_cost) / min(cockpit_cost),
        "pair_ratios": pairs,
        "bare_ms_per_iter": 1000 * min(bare_cost),
        "cockpit_ms_per_iter": 1000 * min(cockpit_cost),
        "window": list(marks),
        "repeats": repeats,
    }


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        for arch, (marks, log_every, repeats) in PLANS.items():
            results[arch] = measure(arch, marks, log_every, repeats, Path(tmp))
    common.emit({"bench": "engine_overhead", "results": results})


if __name__ == "__main__":
    main()
