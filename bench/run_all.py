"""Run every benchmark and rewrite BENCHMARKS.md with the figures, the date and the machine.

    python bench/run_all.py            # the full set (about 35 minutes on 2 CPU cores)
    python bench/run_all.py --quick    # shorter windows and fewer repeats, for development
    python bench/run_all.py --only plot_cost startup   # re-measure these rows, keep the others
    python bench/run_all.py --from-raw # measure nothing: the table and notes again, from the raw results

Each benchmark is a separate script run as its own process (so one's imports, threads
and memory never colour another's figures) and prints one JSON line; this script turns
those lines into the table. ``bench/notes.md`` (the before/after record of fixes, which
cannot be re-measured) is copied into BENCHMARKS.md as it is. Offline, sample data only,
``weights = "none"``: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUTPUT = REPO / "BENCHMARKS.md"
NOTES = BENCH / "notes.md"

BENCHMARKS = (
    "engine_overhead",
    "ui_overhead",
    "control_latency",
    "plot_cost",
    "startup",
    "preflight_speed",
    "evaluation",
    "contention",
    "report_speed",
)
GPU_SENTENCE = "Not run on a GPU: no GPU machine has been lent yet. `python bench/gpu_check.py` is the one-shot check for that day (overhead vs the bare loop on resnet50-fpn and mobilenet with AMP off/on, the memory pane vs the allocator and NVML, a real CUDA OOM recovered, a 1-process NCCL run); its `--device cpu --quick` form runs in the test suite. Never estimated."


TIMEOUT_S = {"engine_overhead": 2400}
"""Seconds a benchmark may take before it counts as failed (default 1200); row 1 runs six
processes one after another and takes ~22 minutes."""


def run_one(name: str, env: dict[str, str]) -> tuple[dict | None, str, float]:
    started = time.perf_counter()
    limit = TIMEOUT_S.get(name, 1200)
    # A process group of its own, so a timeout ends the processes the benchmark started too.
    proc = subprocess.Popen([sys.executable, str(BENCH / f"{name}.py")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        # SIGINT first: the benchmark's finally blocks thaw and end what it started (frozen
        # processes, tmux sessions, cgroups), which a SIGKILL would leave behind.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        # The other rows still run and the file is still written, with this row failed.
        return None, f"timed out after {limit} s", time.perf_counter() - started
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"exit {done.returncode}: {tail}", seconds
    return json.loads(lines[-1]), "", seconds


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    probe = subprocess.run(
        [sys.executable, "-c", "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"],
        capture_output=True,
        text=True,
    )
    torch_version, tv_version, cuda = (probe.stdout.split() + ["?", "?", "False"])[:3]
    return {
        "cpu": model,
        "cores": f"{usable} usable ({os.cpu_count()} reported)",
        "torch": torch_version,
        "torchvision": tv_version,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "device": "CPU (no GPU)" if cuda != "True" else "CUDA available but the benchmarks ran on CPU",
    }


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _interleaved(x: dict) -> str:
    """How an interleaved ratio (bench/interleave.py) came about, and how sure it is."""
    low, high = x["interval_90"]
    plow, phigh = x["pooled_interval_90"]
    rounds = x["per_round"]
    groups = x.get("per_group", [])
    unit = "process" if x.get("one_process") else "pair"
    by_pair = (
        f"; each {unit}'s median {', '.join(f'{g:.3f}' for g in groups)}" if len(groups) > 1 else ""
    )
    return (
        f"of interleaved turns (90% interval {low:.3f}-{high:.3f}; pooled over all turns {x['pooled_ratio']:.3f}, "
        f"{plow:.3f}-{phigh:.3f}; one round alone {rounds[0]:.2f}-{rounds[-1]:.2f}{by_pair})"
    )


def _rounds(x: dict) -> str:
    """'16 rounds', '24 pair-rounds (8 rounds of 3 pairs of fresh processes)', or
    '24 rounds (8 in each of 3 processes, both sides in one process)'."""
    groups = x.get("groups", 1)
    if x.get("one_process"):
        return f"{x['rounds']} rounds ({x['rounds'] // groups} in each of {groups} processes, both sides in one process)"
    if groups == 1:
        return f"{x['rounds']} rounds"
    return f"{x['rounds']} pair-rounds ({x['rounds'] // groups} rounds of {groups} pairs of fresh processes)"


def _verdict(x: dict, target: float) -> str:
    """Met or not by the stated figure, and whether its 90% interval settles it."""
    low, high = x["interval_90"]
    if low >= target:
        return "yes"
    if high < target:
        return "**no**"
    met = "yes" if x["ratio"] >= target else "**no**"
    return f"{met}, within the noise (the interval spans {target})"


def rows_for(name: str, r: dict) -> list[tuple[str, str, str, str]]:
    """(benchmark, figure, target, met?) rows for one benchmark's JSON."""
    if name == "engine_overhead":
        out = []
        for arch, x in r["results"].items():
            out.append(
                (
                    f"1. Engine overhead, `{arch}`",
                    f"throughput ratio **{x['ratio']:.3f}**, the median of {_rounds(x)} "
                    f"{_interleaved(x)} (bare {x['bare_ms_per_iter']:.0f} ms/it over "
                    f"{x['iterations_per_side']['bare']} iterations in {x['turn_s']:.0f} s turns; "
                    f"{'the headless engine' if x.get('one_process') else 'cockpit --headless'} "
                    f"{x['cockpit_ms_per_iter']:.0f} ms/it over {x['iterations_per_side']['cockpit']}"
                    + (f"; the engine's other threads took {100 * x['engine_threads_cpu_share']:.1f}% of a core "
                       "during the bare loop's turns" if "engine_threads_cpu_share" in x else "")
                    + ")",
                    ">= 0.98",
                    _verdict(x, 0.98),
                )
            )
        return out
    if name == "ui_overhead":
        ms = r["ms_per_iter"]
        return [
            (
                f"2. Cockpit overhead (TUI drawing in {r['terminal']}) vs `--headless` in the same terminal, "
                "`tiny`, log_every 1",
                f"throughput ratio **{r['ratio']:.3f}**, the median of {_rounds(r)} {_interleaved(r)} "
                f"(headless {ms['headless_in_terminal']:.0f} ms/it over "
                f"{r['iterations_per_side']['headless_in_terminal']} iterations in {r['turn_s']:.0f} s turns, "
                f"cockpit {ms['cockpit_ui']:.0f} ms/it over {r['iterations_per_side']['cockpit_ui']}). UI thread "
                f"{100 * r['ui_thread_cpu_share']:.1f}% of one core, tmux {100 * r['terminal_cpu_share']:.1f}%",
                ">= 0.95 of headless on 2 cores",
                _verdict(r, 0.95),
            )
        ]
    if name == "control_latency":
        ok = r["pause"]["max_iters_late"] == 0 and r["set_lr"]["max_iters_late"] == 0
        def part(label: str, x: dict) -> str:
            return (
                f"{label}: {x['max_iters_late']} iterations late (max), {x['median_ms']:.0f} ms median / "
                f"{x['max_ms']:.0f} ms max to the effect"
            )
        return [
            (
                "3. Control latency",
                f"{part('pause', r['pause'])}; {part('set LR', r['set_lr'])} ({r['trials']} trials each; "
                f"an iteration takes {r['median_iter_ms']:.0f} ms)",
                "effect at the next iteration boundary, always",
                yes(ok),
            )
        ]
    if name == "plot_cost":
        sizes = r["sizes"]
        figure = ", ".join(f"{int(n):,} steps {x['redraw_ms']:.1f} ms" for n, x in sizes.items())
        return [
            (
                "4. Loss-pane redraw",
                f"{figure} (worst view; growth x{r['growth']:.2f})",
                "< 20 ms at every length, within 2x from 1k to 1M",
                yes(r["worst_redraw_ms"] < 20 and r["growth"] <= 2.0),
            ),
            (
                "4. History memory",
                f"**{r['history_mb_at_max']:.1f} MB** at {r['max_steps']:,} steps",
                "< 100 MB at 1M steps",
                yes(r["history_mb_at_max"] < 100),
            ),
        ]
    if name == "startup":
        return [
            (
                "5. `cockpit --help`",
                f"**{r['help_s']:.2f} s** (median {r['help_median_s']:.2f} s); torch imported: {'yes' if r['help_imports_torch'] else 'no'}",
                "< 0.5 s, no torch import",
                yes(r["help_s"] < 0.5 and not r["help_imports_torch"]),
            ),
            (
                "5. First drawn cockpit frame (sample)",
                f"**{r['first_frame_s']:.2f} s** (median {r['first_frame_median_s']:.2f} s) = **{r['first_frame_ratio']:.2f}x** "
                f"the process `python -c \"import torch, torchvision\"` ({r['torch_import_process_s']:.2f} s); "
                "first loss record at "
                + (f"{r['first_loss_record_s']:.1f} s" if r.get("first_loss_record_s") else "n/a"),
                "<= 0.5x the torch + torchvision import",
                yes(r["first_frame_ratio"] <= 0.5),
            ),
        ]
    if name == "preflight_speed":
        ratio = r["seconds"] / r["torch_import_seconds"]
        return [
            (
                "6. `cockpit check`, 10,000 images / 100,000 boxes",
                f"**{r['seconds']:.2f} s** whole process (median {r['median_seconds']:.2f} s) = **{ratio:.2f}x** the "
                f"torch + torchvision import alone ({r['torch_import_seconds']:.2f} s); the check itself "
                f"{r['check_seconds']:.2f} s; torch imported: {'yes' if r.get('imports_torch') else 'no'}",
                "<= 0.8x the torch + torchvision import",
                yes(ratio <= 0.8),
            )
        ]
    if name == "report_speed":
        return [
            (
                "10. `cockpit report`, 100,000-iteration run (log_every 1)",
                f"**{r['seconds']:.2f} s** wall whole process (median {r['median_seconds']:.2f} s), "
                f"{r['cpu_seconds']:.2f} s CPU; metrics.jsonl {r['metrics_mb']:.0f} MB, events.jsonl {r['events_mb']:.0f} MB",
                "< 3 s",
                yes(r["seconds"] < 3.0),
            )
        ]
    if name == "evaluation":
        s, g = r["sample_val"], r["generated"]
        return [
            (
                "7. COCO evaluation vs pycocotools",
                f"sample val ({s['images']} images): ratio **{s['ratio']:.3f}** ({1000 * s['cockpit_s']:.0f} vs "
                f"{1000 * s['direct_s']:.0f} ms); generated ({g['images']:,} images, {g['detections']:,} detections): "
                f"ratio **{g['ratio']:.3f}** ({g['cockpit_s']:.2f} vs {g['direct_s']:.2f} s"
                + (f"; median of {g['rounds']} rounds, each side back to back, rounds {g['per_round'][0]:.3f}-"
                   f"{g['per_round'][-1]:.3f}; best times {g['ratio_of_best']:.3f}" if "per_round" in g else "")
                + f"); same AP: {'yes' if s['same_ap'] and g['same_ap'] else 'NO'}",
                "~1.0 (taken as <= 1.05 on the large set)",
                yes(g["ratio"] <= 1.05 and s["same_ap"] and g["same_ap"]),
            )
        ]
    if name == "contention":
        return [
            (
                "9. Busy machine (one other process keeps one core busy), `tiny` --headless",
                f"quiet {r['quiet_auto_ms_per_iter']:.0f} ms/it; busy with torch's default threads "
                f"{r['busy_default_ms_per_iter']:.0f} ms/it (x{r['slowdown_default']:.2f}), with `run.threads = \"auto\"` "
                f"**{r['busy_auto_ms_per_iter']:.0f} ms/it (x{r['slowdown_auto']:.2f})**; {r['cores']} usable cores",
                "auto faster than the default threads under contention",
                yes(r["busy_auto_ms_per_iter"] < r["busy_default_ms_per_iter"]),
            )
        ]
    return [(name, json.dumps(r), "", "")]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write(results: dict[str, tuple[dict | None, str, float]], info: dict[str, str], quick: bool, total: float,
          written: str | None = None, remeasured: list[tuple[str, list[str]]] = ()) -> None:
    """``remeasured``: (date, benchmark names) of each later ``--only`` run whose rows
    replaced the full run's."""
    now = written or _now()
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python bench/run_all.py{' --quick' if quick else ''}` on {now}; the whole run took "
        f"{total / 60:.1f} minutes. Each figure comes from one script in `bench/` (its docstring says what it "
        "measures and how); rerun them all to refresh this file.",
        "",
    ]
    for date, names in remeasured:
        lines += [f"Re-measured on {date} with `--only`: {', '.join(names)}; the other rows are from the run above.", ""]
    lines += [
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".",
        "",
    ]
    if quick:
        lines += ["**Quick mode**: shorter windows and fewer repeats than the real run; figures are indicative only.", ""]
    lines += ["| benchmark | figure | target | met? |", "|---|---|---|---|"]
    for name in BENCHMARKS:
        if name not in results:
            continue
        record, error, _ = results[name]
        if record is None:
            lines.append(f"| {name} | failed: {error} | | **no** |")
            continue
        for row in rows_for(name, record):
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    lines.append(f"| 8. GPU | {GPU_SENTENCE} | | |")
    lines += ["", "## Raw results", "", "One JSON line per script, as printed (seconds it took in brackets).", "", "```"]
    for name in BENCHMARKS:
        if name in results:
            record, error, seconds = results[name]
            lines.append(f"[{seconds:.0f} s] " + (json.dumps(record) if record is not None else f"{name}: {error}"))
    lines += ["```", ""]
    if NOTES.exists():
        lines += [NOTES.read_text(encoding="utf-8").rstrip(), ""]
    OUTPUT.write_text("\n".join(lines), encoding="utf-8")


_HEADER = re.compile(r"Written by `python bench/run_all.py( --quick)?` on (.+?); the whole run took ([\d.]+) minutes")
_REMEASURED = re.compile(r"^Re-measured on (.+?) with `--only`: (.+?); the other rows", re.MULTILINE)
_RAW = re.compile(r"^\[(\d+) s\] (.*)$")


def read_remeasured(path: Path) -> list[tuple[str, list[str]]]:
    """The ``--only`` runs a BENCHMARKS.md records since its full run."""
    return [(m.group(1), m.group(2).split(", ")) for m in _REMEASURED.finditer(path.read_text(encoding="utf-8"))]


def read_raw(path: Path) -> tuple[dict[str, tuple[dict | None, str, float]], dict[str, str], bool, float, str]:
    """The results, machine, mode, duration and date a BENCHMARKS.md was written from."""
    text = path.read_text(encoding="utf-8")
    header = _HEADER.search(text)
    machine_line = next((line for line in text.splitlines() if line.startswith("Machine: ")), None)
    if header is None or machine_line is None or "## Raw results" not in text:
        raise SystemExit(f"{path}: not written by run_all.py (no header, machine line or raw results)")
    info = dict(part.split(" ", 1) for part in machine_line[len("Machine: "):].rstrip(".").split("; "))
    results: dict[str, tuple[dict | None, str, float]] = {}
    block = text.split("## Raw results", 1)[1].split("```")[1]
    for line in block.splitlines():
        match = _RAW.match(line)
        if not match:
            continue
        seconds, rest = float(match.group(1)), match.group(2)
        if rest.startswith("{"):
            record = json.loads(rest)
            results[record["bench"]] = (record, "", seconds)
        else:
            name, _, error = rest.partition(": ")
            results[name] = (None, error, seconds)
    return results, info, bool(header.group(1)), 60 * float(header.group(3)), header.group(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer repeats (development)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--from-raw", action="store_true",
                        help="measure nothing: rewrite BENCHMARKS.md from the raw results already in it "
                             "(after a change to the table's wording or to bench/notes.md)")
    args = parser.parse_args()
    if args.from_raw:
        results, info, quick, total, written = read_raw(OUTPUT)
        write(results, info, quick, total, written, read_remeasured(OUTPUT))
        print(f"rewrote {OUTPUT} from its raw results (written {written})", file=sys.stderr)
        return 0
    earlier = None
    if args.only and OUTPUT.exists():
        # The rows not re-measured stay as the last run left them, and the file says which
        # rows are newer. Not across modes or machines: quick figures never stand beside
        # full ones, nor one machine's beside another's.
        try:
            earlier = read_raw(OUTPUT)
        except SystemExit as error:
            print(f"{error}; writing only the rows measured now", file=sys.stderr)
        if earlier is not None and earlier[2] != args.quick:
            print(f"{OUTPUT.name} holds {'quick' if earlier[2] else 'full'} figures; writing only the rows measured now",
                  file=sys.stderr)
            earlier = None
        if earlier is not None and earlier[1] != machine():
            print(f"{OUTPUT.name} was measured on another machine (or torch); writing only the rows measured now",
                  file=sys.stderr)
            earlier = None
    env = dict(os.environ, COCKPIT_BENCH_QUICK="1" if args.quick else "0")
    # The scripts import ``common`` from bench/ and cockpit from the checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), str(REPO), env.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    results = {}
    for name in args.only or BENCHMARKS:
        print(f"{name} ...", end=" ", flush=True, file=sys.stderr)
        results[name] = run_one(name, env)
        record, error, seconds = results[name]
        print(f"{seconds:.0f} s" + (f" FAILED: {error}" if error else ""), file=sys.stderr, flush=True)
    ok = all(record is not None for record, _, _ in results.values())
    if earlier is not None:
        kept, info, quick, total, written = earlier
        # A row that failed now keeps its earlier figure (the failure is printed above).
        measured = {name: r for name, r in results.items() if r[0] is not None or name not in kept}
        remeasured = [(date, [n for n in names if n not in measured]) for date, names in read_remeasured(OUTPUT)]
        remeasured = [entry for entry in remeasured if entry[1]] + ([(_now(), list(measured))] if measured else [])
        write({**kept, **measured}, info, quick, total, written, remeasured)
    else:
        write(results, machine(), args.quick, time.perf_counter() - started)
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
