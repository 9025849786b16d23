"""The one-shot GPU check: everything in cockpit that has never run on CUDA, in one script.

    python bench/gpu_check.py                    # on a GPU machine: the whole check, < 8 min
    python bench/gpu_check.py --device cpu --quick   # the same code paths on CPU, in the suite

Each check prints one JSON line (``{"check": ..., "ok": true|false, ...}``); the script
exits 1 if any check failed, so a broken path fails loudly instead of printing a figure.

- ``overhead``: cockpit ``--headless`` against the bare torchvision loop
  (``bench/bare_loop.py``) on resnet50-fpn and mobilenet at their default image sizes,
  batch 4, AMP off and on; the ratio is bare s/it over cockpit s/it (1.0 = free).
- ``memory``: what cockpit's memory pane records (``mem_peak_mb``, ``mem_reserved_mb``
  in metrics.jsonl) against the bare loop's ``torch.cuda.max_memory_allocated`` on the
  same recipe and against NVML's per-process figure read from outside while it runs.
  On CPU the pane shows RSS only; it is compared with the kernel's peak RSS (VmHWM).
- ``real_oom``: a real CUDA out-of-memory, not the ``--inject`` one: the allocator is
  capped (``torch.cuda.set_per_process_memory_fraction``) between what batch 2 and batch
  4 need, measured first, so the first full batch fails inside CUDA. The run must recover
  through halve-the-micro-batch-and-accumulate and finish with ``last.pt``. On CPU there
  is no allocator to cap, so the same recovery path is driven by ``--inject oom@N``
  (reported as ``"simulated": true``).
- ``ddp``: a 1-process ``torchrun`` run (NCCL on CUDA, gloo on CPU) finishes.

Offline: sample data only, ``weights = "none"``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import COCKPIT, PYTHON, REPO, SAMPLE, emit, overrides, per_iteration, set_args  # noqa: E402

BARE = [PYTHON, str(REPO / "bench" / "bare_loop.py")]
PEAK = re.compile(r"peak_mb ([0-9.]+)")
ITER = re.compile(r"^it (\d+)[/ ]")
ARCHS = {"resnet50-fpn": "fasterrcnn_resnet50_fpn", "mobilenet": "fasterrcnn_mobilenet_v3_large_fpn"}


class Failed(Exception):
    """A check could not produce its figure; the message says why."""


def run_logged(cmd: list[str], stop_at: int | None, timeout: float, env: dict | None = None) -> dict:
    """Run ``cmd``, timestamp every ``it N`` line, sample peak RSS and NVML while it runs.

    Stops the process once iteration ``stop_at`` is printed (None: let it finish).
    """
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    )
    seen: dict[int, float] = {}
    lines: list[str] = []
    watch = {"vmhwm_mb": 0.0, "nvml_mb": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            watch["vmhwm_mb"] = max(watch["vmhwm_mb"], _vmhwm_mb(proc.pid))
            watch["nvml_mb"] = max(watch["nvml_mb"], _nvml_process_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    deadline = time.monotonic() + timeout
    stopped = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            match = ITER.match(line)
            if match:
                seen[int(match.group(1))] = time.perf_counter()
                if stop_at is not None and int(match.group(1)) >= stop_at:
                    watch["vmhwm_mb"] = max(watch["vmhwm_mb"], _vmhwm_mb(proc.pid))
                    stopped = True
                    break
            if time.monotonic() > deadline:
                raise Failed(f"{' '.join(cmd[:4])}...: no end within {timeout:.0f} s")
    finally:
        if stopped or proc.poll() is None:
            proc.kill()
        code = proc.wait()
        done.set()
        sampler.join()
    return {"seen": seen, "lines": lines, "code": None if stopped else code, **watch}


def _vmhwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _nvml_process_mb(pid: int) -> float:
    """Device memory NVML charges to ``pid`` (what nvidia-smi shows); 0 without a GPU."""
    if shutil.which("nvidia-smi") is None:
        return 0.0
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0.0
    for row in out.splitlines():
        parts = [p.strip() for p in row.split(",")]
        if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
            return float(parts[1])
    return 0.0


def tail(result: dict, n: int = 3) -> str:
    return " | ".join(result["lines"][-n:])


def only_run_dir(output: Path) -> Path:
    runs = [p for p in output.iterdir() if p.is_dir()]
    if len(runs) != 1:
        raise Failed(f"expected one run directory under {output}, found {len(runs)}")
    return runs[0]


def read_jsonl(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class Check:
    """The settings every check shares: device, sizes, where runs go."""

    def __init__(self, device: str, quick: bool, workdir: Path):
        self.device = device
        self.quick = quick
        self.workdir = workdir
        self.archs = {"tiny": "tiny"} if quick else ARCHS
        self.amps = (False,) if device == "cpu" else (False, True)
        self.marks = (10, 30) if quick else (20, 120)
        self.timeout = 300.0 if quick else 240.0
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")

    def settings(self, name: str, arch: str, amp: bool, iters: int, batch: int = 4) -> tuple[list[str], Path]:
        output = self.workdir / name
        output.mkdir(parents=True, exist_ok=True)
        items = overrides(output, arch, iters) + [
            f"run.device={self.device}",
            f"optim.amp={'true' if amp else 'false'}",
            f"data.batch_size={batch}",
        ]
        return set_args(items), output

    def overhead(self, label: str, arch: str, amp: bool) -> dict:
        hi = self.marks[1]
        args, _ = self.settings(f"overhead-{label}-{amp}", arch, amp, hi + 10)
        cockpit = run_logged(COCKPIT + ["run", str(SAMPLE), "--headless", "--no-check"] + args, hi, self.timeout, self.env)
        bare = run_logged(BARE + [str(SAMPLE)] + args, hi, self.timeout, self.env)
        for name, result in (("cockpit", cockpit), ("bare", bare)):
            if any(m not in result["seen"] for m in self.marks):
                raise Failed(f"{name} printed no 'it {self.marks}' lines: {tail(result)}")
        cockpit_s = per_iteration(cockpit["seen"], self.marks)
        bare_s = per_iteration(bare["seen"], self.marks)
        ratio = bare_s / cockpit_s
        return {"arch": label, "amp": amp, "cockpit_s_per_it": round(cockpit_s, 4), "bare_s_per_it": round(bare_s, 4),
                "ratio": round(ratio, 3), "meets_0.98": ratio >= 0.98}

    def memory(self, label: str, arch: str) -> dict:
        iters = self.marks[1]
        args, output = self.settings(f"memory-{label}", arch, False, iters)
        cockpit = run_logged(COCKPIT + ["run", str(SAMPLE), "--headless", "--no-check"] + args, None, self.timeout, self.env)
        if cockpit["code"] != 0:
            raise Failed(f"cockpit run exited {cockpit['code']}: {tail(cockpit)}")
        train = [r for r in read_jsonl(only_run_dir(output) / "metrics.jsonl") if r.get("kind") == "train"]
        if not train:
            raise Failed("metrics.jsonl holds no train record")
        last = train[-1]
        if self.device == "cpu":
            rss = float(last.get("rss_mb", 0.0))
            peak_rss = cockpit["vmhwm_mb"]
            if not 0 < rss <= peak_rss * 1.01:
                raise Failed(f"pane RSS {rss} MB vs kernel peak RSS {peak_rss} MB")
            return {"arch": label, "pane_rss_mb": rss, "kernel_peak_rss_mb": round(peak_rss, 1)}
        bare = run_logged(BARE + [str(SAMPLE)] + args, iters, self.timeout, self.env)
        peaks = [float(m.group(1)) for m in map(PEAK.search, bare["lines"]) if m]
        if not peaks:
            raise Failed(f"bare loop printed no peak_mb: {tail(bare)}")
        pane_peak = float(last.get("mem_peak_mb", 0.0))
        pane_reserved = float(last.get("mem_reserved_mb", 0.0))
        nvml = cockpit["nvml_mb"]
        bare_peak = peaks[-1]
        # cockpit's peak includes its eval-mode probe and snapshot copies; a pane that is off
        # by more than a third from the same recipe's allocator peak is reading the wrong thing.
        close = bare_peak > 0 and abs(pane_peak - bare_peak) / bare_peak <= 0.34
        # NVML counts the CUDA context too, so it can only be above the allocator's reservation.
        consistent = nvml == 0.0 or pane_reserved <= nvml
        if not (close and consistent):
            raise Failed(f"pane peak {pane_peak} MB vs bare {bare_peak} MB; reserved {pane_reserved} MB vs NVML {nvml} MB")
        return {"arch": label, "pane_peak_mb": pane_peak, "bare_peak_mb": bare_peak, "pane_reserved_mb": pane_reserved,
                "nvml_process_mb": nvml or None}

    def real_oom(self, label: str, arch: str) -> dict:
        iters = 20
        if self.device == "cpu":
            args, output = self.settings("oom-cpu", arch, False, iters)
            cmd = COCKPIT + ["run", str(SAMPLE), "--headless", "--no-check", "--inject", "oom@5"] + args
            cap = None
        else:
            cap = self._cap_between_batches(arch)
            args, output = self.settings(f"oom-{label}", arch, False, iters)
            cmd = [PYTHON, "-c", CAPPED_COCKPIT, str(cap["fraction"]), "run", str(SAMPLE), "--headless", "--no-check"] + args
        result = run_logged(cmd, None, self.timeout, self.env)
        if result["code"] != 0:
            raise Failed(f"run with an OOM exited {result['code']}: {tail(result)}")
        run_dir = only_run_dir(output)
        retries = [e for e in read_jsonl(run_dir / "events.jsonl") if "oom" in str(e.get("category", ""))]
        if not retries:
            raise Failed("no OOM recovery event: the cap did not make CUDA fail" if cap else "no OOM recovery event")
        if not (run_dir / "checkpoints" / "last.pt").exists():
            raise Failed("the run finished without checkpoints/last.pt")
        return {"arch": label, "simulated": cap is None, "recoveries": len(retries),
                "first": retries[0].get("message") or retries[0].get("summary"), **(cap or {})}

    def _cap_between_batches(self, arch: str) -> dict:
        """Measure the allocator peak at batch 2 and 4; cap the process halfway between."""
        peaks = {}
        for batch in (2, 4):
            args, _ = self.settings(f"oom-probe-{batch}", arch, False, 10, batch=batch)
            probe = run_logged(BARE + [str(SAMPLE)] + args, 10, self.timeout, self.env)
            found = [float(m.group(1)) for m in map(PEAK.search, probe["lines"]) if m]
            if not found:
                raise Failed(f"batch {batch} probe printed no peak: {tail(probe)}")
            peaks[batch] = found[-1]
        import torch

        total_mb = torch.cuda.get_device_properties(0).total_memory / 2**20
        cap_mb = (peaks[2] + peaks[4]) / 2
        return {"peak_b2_mb": peaks[2], "peak_b4_mb": peaks[4], "cap_mb": round(cap_mb, 1),
                "fraction": round(cap_mb / total_mb, 5)}

    def ddp(self, label: str, arch: str) -> dict:
        args, output = self.settings(f"ddp-{label}", arch, False, 20)
        cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "cockpit",
               "run", str(SAMPLE), "--headless", "--no-check"] + args
        result = run_logged(cmd, None, self.timeout, self.env)
        if result["code"] != 0:
            raise Failed(f"torchrun exited {result['code']}: {tail(result)}")
        started = [e for e in read_jsonl(only_run_dir(output) / "events.jsonl") if e.get("kind") == "run_started"]
        world = (started[0].get("environment") or {}).get("world_size") if started else None
        if world != 1:
            raise Failed(f"run_started says world_size {world!r}, expected 1")
        return {"arch": label, "backend": "nccl" if self.device != "cpu" else "gloo", "world_size": world}


# Caps the CUDA caching allocator before cockpit touches the GPU, then runs the CLI.
CAPPED_COCKPIT = (
    "import sys, torch; torch.cuda.set_per_process_memory_fraction(float(sys.argv[1])); "
    "sys.argv = ['cockpit'] + sys.argv[2:]; from cockpit.cli import main; raise SystemExit(main())"
)


def run_checks(check: Check) -> bool:
    ok = True
    plan = [("overhead", label, arch, amp) for label, arch in check.archs.items() for amp in check.amps]
    first_label, first_arch = next(iter(check.archs.items()))
    plan += [("memory", first_label, first_arch, None), ("real_oom", first_label, first_arch, None),
             ("ddp", first_label, first_arch, None)]
    for name, label, arch, amp in plan:
        started = time.perf_counter()
        try:
            method = getattr(check, name)
            figures = method(label, arch, amp) if name == "overhead" else method(label, arch)
            record = {"check": name, "ok": True, **figures}
        except Failed as error:
            ok = False
            record = {"check": name, "ok": False, "arch": label, "error": str(error)}
        record["seconds"] = round(time.perf_counter() - started, 1)
        emit(record)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny model, short windows: for the test suite")
    parser.add_argument("--keep", type=Path, help="keep the runs under this folder instead of a temporary one")
    args = parser.parse_args()
    if args.device != "cpu":
        import torch

        if not torch.cuda.is_available():
            emit({"check": "cuda", "ok": False, "error": "CUDA is not available here; use --device cpu --quick"})
            return 1
        emit({"check": "cuda", "ok": True, "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__})
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return 0 if run_checks(Check(args.device, args.quick, args.keep)) else 1
    with tempfile.TemporaryDirectory(prefix="cockpit-gpu-check-") as tmp:
        return 0 if run_checks(Check(args.device, args.quick, Path(tmp))) else 1


if __name__ == "__main__":
    raise SystemExit(main())
