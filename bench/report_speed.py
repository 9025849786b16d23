"""Report speed: ``cockpit report`` on a generated 100,000-iteration run directory.

The run directory is written by the engine's own writer (``RunDirWriter``, the real event
classes): 100,000 training steps logged at every iteration (``log_every = 1``, the worst
case: 100,000 lines in ``metrics.jsonl`` and as many ``step`` events in
``events.jsonl``), four loss terms, memory and grad norm per step, an evaluation every
5,000 iterations, a handful of LR changes and flags. Timed: the whole
``cockpit report RUN_DIR`` process (interpreter start-up and imports included), best and
median of a few runs, with its user+system CPU seconds, plus the sizes of the two files.
"""

from __future__ import annotations

import math
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import common

from cockpit.config import Config, dump_config
from cockpit.engine.events import (
    CheckState,
    EvalResult,
    FlagRaised,
    LRChanged,
    LRSource,
    RunFinished,
    RunStarted,
    RunState,
    Severity,
    StepMetrics,
)
from cockpit.engine.rundir import RunDirWriter

ITERS = 100_000
EVAL_EVERY = 5_000
REPEATS = 1 if common.QUICK else 3
T0 = 1_760_000_000.0


def step(it: int) -> StepMetrics:
    decay = math.exp(-it / 20_000)
    losses = {
        "loss_classifier": 0.6 * decay + 0.05 + 0.02 * math.sin(it),
        "loss_box_reg": 0.4 * decay + 0.1,
        "loss_objectness": 0.3 * decay + 0.01 + 0.01 * math.cos(it / 7),
        "loss_rpn_box_reg": 0.1 * decay + 0.02,
    }
    memory = {"allocated_mb": 1800.0 + it % 13, "reserved_mb": 2400.0, "peak_mb": 2200.0 + it % 50, "rss_mb": 2100.0 + it * 0.001}
    return StepMetrics(
        iter=it, epoch=it // 10_000, lr=0.005 if it < 60_000 else 0.0005, losses=losses, loss=sum(losses.values()),
        iter_time=0.21 + 0.01 * math.sin(it / 3), data_time=0.01, grad_norm=3.2 * decay + 0.5, memory=memory,
        batch_size=4, time=T0 + it * 0.21,
    )


def generate(root: Path) -> Path:
    config = Config.model_validate(
        {"run": {"name": "long", "output_dir": str(root), "log_every": 1, "max_iters": ITERS},
         "data": {"classes": ["circle", "square"]}, "model": {"arch": "tiny", "weights": "none"}}
    )
    run_dir = root / "long-20260101-000000"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(dump_config(config), encoding="utf-8")
    writer = RunDirWriter(run_dir)
    writer(RunStarted(run_dir=str(run_dir), config=config.model_dump(mode="json"), environment={"python": "3", "device": "cpu"},
                      total_iters=ITERS, iters_per_epoch=10_000, time=T0))
    for it in range(1, ITERS + 1):
        writer(step(it))
        if it == 60_000:
            writer(LRChanged(iter=it, lr=0.0005, previous=0.005, source=LRSource.SCHEDULE, time=T0 + it * 0.21))
        if it % EVAL_EVERY == 0:
            ap = 0.5 * (1 - math.exp(-it / 30_000))
            metrics = {k: ap for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")}
            writer(EvalResult(iter=it, epoch=it // 10_000, metrics=metrics, per_class={"circle": ap, "square": ap},
                              num_images=500, time=T0 + it * 0.21))
        if it in (12_345, 54_321):
            writer(FlagRaised(rule="loss_spike", title="Loss spike", status=CheckState.FLAGGED, severity=Severity.WARNING,
                              evidence=f"loss jumped at {it}", likely_cause="a bad batch", fix="lower the LR", iter=it,
                              time=T0 + it * 0.21))
    writer(RunFinished(state=RunState.FINISHED, iter=ITERS, epoch=9, reason="done", time=T0 + ITERS * 0.21))
    writer.close()
    return run_dir


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        run_dir = generate(Path(tmp))
        sizes = {name: (run_dir / name).stat().st_size / 1e6 for name in ("metrics.jsonl", "events.jsonl")}
        times, cpu, code = [], [], None
        for _ in range(REPEATS):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(common.COCKPIT + ["report", str(run_dir), "-o", str(Path(tmp) / "out")],
                                  cwd=common.REPO, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            code = done.returncode
    common.emit(
        {
            "bench": "report_speed",
            "iterations": ITERS,
            "records": ITERS,
            "seconds": min(times),
            "median_seconds": statistics.median(times),
            "cpu_seconds": min(cpu),
            "exit_code": code,
            "metrics_mb": round(sizes["metrics.jsonl"], 1),
            "events_mb": round(sizes["events.jsonl"], 1),
        }
    )


if __name__ == "__main__":
    main()
