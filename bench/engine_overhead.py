"""Engine overhead: ``cockpit run --headless`` against a bare torchvision loop.

Both sides train the same model from the same config (data, batch size, augmentation
probabilities, SGD recipe, seed, ``num_workers``) as separate processes, alternating
A/B several times. Each process prints a line every ``log_every`` iterations; the parent
timestamps the lines and takes the per-iteration cost between two of them, so start-up,
pre-flight and the end of the run cancel out. For ``tiny`` the window spans four whole
epochs (four epoch-end checkpoints, two NaN-rewind snapshots, one eval-mode probe); the
mobilenet model is ~30x slower per iteration on 2 CPU cores, so its window is a few
iterations inside the first epoch.

The VM's own speed wanders by +-25% over minutes (bench/ui_overhead.py), so the sides run
in ABBA blocks (bare, cockpit, cockpit, bare; then the mirror), which cancels a linear
drift, and the ratio is cockpit's throughput over the bare loop's from the medians over
all runs. The ratio of each side's least disturbed (fastest) run is printed beside it.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import common

# arch -> (window marks, log_every, ABBA blocks of four runs)
PLANS = {
    "tiny": ((10, 70) if common.QUICK else (10, 130), 10, 1 if common.QUICK else 2),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ((2, 4) if common.QUICK else (2, 6), 2, 1),
}


def measure(arch: str, marks: tuple[int, int], log_every: int, blocks: int, tmp: Path) -> dict:
    costs: dict[str, list[float]] = {"bare": [], "cockpit": []}
    commands = {
        "bare": [common.PYTHON, str(common.REPO / "bench" / "bare_loop.py"), str(common.SAMPLE)],
        "cockpit": common.COCKPIT + ["run", str(common.SAMPLE), "--headless"],
    }
    run = 0
    for block in range(blocks):
        order = ("bare", "cockpit", "cockpit", "bare") if block % 2 == 0 else ("cockpit", "bare", "bare", "cockpit")
        for side in order:
            items = common.overrides(tmp / f"{arch}-{run}", arch, marks[1] + 1000) + [f"run.log_every={log_every}"]
            times = common.timed_iterations(commands[side] + common.set_args(items), marks)
            costs[side].append(common.per_iteration(times, marks))
            run += 1
    bare, cockpit = costs["bare"], costs["cockpit"]
    return {
        "ratio": statistics.median(bare) / statistics.median(cockpit),
        "best_run_ratio": min(bare) / min(cockpit),
        "bare_ms_per_iter": 1000 * statistics.median(bare),
        "cockpit_ms_per_iter": 1000 * statistics.median(cockpit),
        "bare_ms_range": [1000 * min(bare), 1000 * max(bare)],
        "cockpit_ms_range": [1000 * min(cockpit), 1000 * max(cockpit)],
        "window": list(marks),
        "runs_per_side": len(bare),
    }


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        for arch, (marks, log_every, blocks) in PLANS.items():
            results[arch] = measure(arch, marks, log_every, blocks, Path(tmp))
    common.emit({"bench": "engine_overhead", "results": results})


if __name__ == "__main__":
    main()
