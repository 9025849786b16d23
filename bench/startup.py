"""Start-up: ``cockpit --help`` and the time to the first drawn cockpit frame.

- ``--help``: wall time of the installed ``cockpit`` script (``python -m cockpit`` when
  the script is not installed), best and median of several runs, and whether torch was
  imported (``python -X importtime``: a top-level ``torch`` entry means it was).
- First frame: ``cockpit run sample_data/shapes.toml`` in a 200 x 50 pseudo-terminal,
  from launch to the first bytes of a frame that carries the pane titles (the data check,
  torch's import and the model's construction run behind the drawn cockpit). Measured
  side by side with the whole process ``python -c "import torch, torchvision"``, run
  after each frame, and given as their ratio (target <= 0.5). Also when the first loss
  record reached the run directory, for scale.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import statistics
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path

import common

REPEATS = 3 if common.QUICK else 7
FRAME_REPEATS = 1 if common.QUICK else 3
COLUMNS, ROWS = 200, 50


def cockpit_cmd() -> list[str]:
    script = Path(common.PYTHON).parent / "cockpit"
    return [str(script)] if script.exists() else list(common.COCKPIT)


def help_times() -> list[float]:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(cockpit_cmd() + ["--help"], cwd=common.REPO, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def help_imports_torch() -> bool:
    done = subprocess.run(
        [common.PYTHON, "-X", "importtime", "-m", "cockpit", "--help"],
        cwd=common.REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return "torch" in names


def torch_import_process() -> float:
    """Wall time of the whole process ``python -c "import torch, torchvision"``."""
    started = time.perf_counter()
    subprocess.run([common.PYTHON, "-c", "import torch, torchvision"], check=True)
    return time.perf_counter() - started


def first_frame(output_dir: Path, timeout: float = 120.0) -> tuple[float, float | None]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
    cmd = cockpit_cmd() + ["run", str(common.SAMPLE), "--set", f"run.output_dir={output_dir}"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=common.REPO, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    buffer = b""
    titles: set[bytes] = set()
    frame = first_record = None
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.01)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                # Keep a tail so a title split across two reads is still found.
                buffer = buffer[-64:] + chunk
                titles.update(t for t in (b"Losses", b"Checklist") if t in buffer)
                if frame is None and len(titles) == 2:
                    frame = time.perf_counter() - started
            if frame is not None:
                metrics = list(output_dir.glob("*/metrics.jsonl"))
                if metrics and metrics[0].stat().st_size > 0:
                    first_record = time.perf_counter() - started
                    break
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    if frame is None:
        raise RuntimeError("no cockpit frame seen")
    return frame, first_record


def main() -> None:
    helps = help_times()
    frames, records, imports = [], [], []
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        for rep in range(FRAME_REPEATS):
            frame, record = first_frame(Path(tmp) / f"frame{rep}")
            frames.append(frame)
            imports.append(torch_import_process())
            if record is not None:
                records.append(record)
    common.emit(
        {
            "bench": "startup",
            "help_s": min(helps),
            "help_median_s": statistics.median(helps),
            "help_imports_torch": help_imports_torch(),
            "first_frame_s": min(frames),
            "first_frame_median_s": statistics.median(frames),
            "torch_import_process_s": min(imports),
            "first_frame_ratio": min(frames) / min(imports),
            "first_loss_record_s": min(records) if records else None,
            "command": " ".join(Path(c).name for c in cockpit_cmd()),
        }
    )


if __name__ == "__main__":
    main()
