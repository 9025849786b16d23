"""Engine overhead: ``cockpit run --headless`` against a bare torchvision loop.

Both sides train the same model from the same config (data, batch size, augmentation
probabilities, SGD recipe, seed, ``num_workers``) as separate processes, each printing a
line every ``log_every`` iterations. The two run interleaved (``bench/interleave.py``):
both are started and warmed up, then take turns of a few seconds each, the other one
frozen, so neighbouring turns see the same machine and the VM's drift of +-25% over
minutes falls out of the ratio. Each round gives one ratio from its two turns (whole
iterations over time, each side). For ``tiny`` a turn spans ~50 iterations and all turns together
cover many epochs (epoch-end checkpoints, NaN-rewind snapshots, eval-mode probes in
proportion); the mobilenet model is ~30x slower per iteration on 2 CPU cores, so its
turns are a few iterations each.

Three pairs of fresh processes (one with ``--quick``; a bare loop and a cockpit each)
are alive at once and take their turns in one sequence: fresh processes on this VM
differ by a few percent, as much as the effect, so one pair cannot settle it. The figure
is the median over every pair's rounds of cockpit's throughput over the bare loop's (the
median holds against the few rounds a neighbour's burst lands on; ``interleave.ratio``),
with a 90% bootstrap interval (pairs, then rounds, resampled), and the ratio pooled over
all turns beside it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import common
import interleave

# arch -> (log_every, warm-up iterations, seconds a turn, rounds, pairs of fresh processes)
PLANS = {
    "tiny": (10, 10, 4.0 if common.QUICK else 6.0, 3 if common.QUICK else 8, 1 if common.QUICK else 3),
    # 8 rounds (was 4): at 3.5 s an iteration a pair got ~13 iterations a side, and one
    # epoch-end checkpoint or one noisy turn moved its median by a percent or more.
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        1, 2, 10.0 if common.QUICK else 16.0, 2 if common.QUICK else 8, 1 if common.QUICK else 3,
    ),
}


def measure(arch: str, log_every: int, warm: int, slice_s: float, rounds: int, groups: int, tmp: Path) -> dict:
    def command(name: str, script: list[str], group: int) -> interleave.Side:
        items = common.overrides(tmp / f"{arch}-{name}{group}", arch, 1_000_000) + [f"run.log_every={log_every}"]
        return interleave.Side(
            name, lambda side: interleave.stdout_lines(side, script + common.set_args(items)), group=group
        )

    sides = [
        side
        for group in range(groups)
        for side in (
            command("bare", [common.PYTHON, str(common.REPO / "bench" / "bare_loop.py"), str(common.SAMPLE)], group),
            command("cockpit", common.COCKPIT + ["run", str(common.SAMPLE), "--headless"], group),
        )
    ]
    done = interleave.interleave(sides, warm, slice_s, rounds)
    slices = done["slices"]
    figure = interleave.ratio(slices, "bare", "cockpit")
    return {
        **figure,
        "bare_ms_per_iter": 1000 * interleave.cost(slices, "bare"),
        "cockpit_ms_per_iter": 1000 * interleave.cost(slices, "cockpit"),
        "iterations_per_side": {
            name: sum(s.iterations for s in slices if s.side == name) for name in ("bare", "cockpit")
        },
        "turn_s": slice_s,
        "held_by": done["held_by"],
    }


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        for arch, plan in PLANS.items():
            results[arch] = measure(arch, *plan, Path(tmp))
    common.emit({"bench": "engine_overhead", "results": results})


if __name__ == "__main__":
    main()
