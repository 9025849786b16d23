"""bench/gpu_check.py runs on CPU in the suite, so the one-shot GPU script never rots
before the day a GPU is lent (its CUDA-only comparisons are exercised there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support import REPO


def test_gpu_check_runs_every_check_on_cpu_quick():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--device", "cpu", "--quick"],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900,
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["check"] for r in records] == ["overhead", "memory", "real_oom", "ddp"]
    assert all(r["ok"] for r in records), records
    overhead, memory, oom, ddp = records
    assert overhead["cockpit_s_per_it"] > 0 and overhead["bare_s_per_it"] > 0
    assert 0 < memory["pane_rss_mb"] <= memory["kernel_peak_rss_mb"] * 1.01
    assert oom["simulated"] is True and oom["recoveries"] >= 1
    assert ddp["world_size"] == 1 and ddp["backend"] == "gloo"


def test_gpu_check_without_cuda_says_so_and_fails():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py")], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 1
    assert records == [{"check": "cuda", "ok": False, "error": "CUDA is not available here; use --device cpu --quick"}]
