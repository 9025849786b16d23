"""AP50 of each ``[loss]`` choice on the bundled sample at equal iterations, against the default.

Each choice is one ``cockpit run sample_data/shapes.toml --headless --no-check`` with
``--set loss.…``, same seed, same recipe and the same number of iterations (the sample's
own 20 epochs = 600 iterations unless ``--iters``), evaluated once at the end. One
process per run, one run at a time, ``OMP_NUM_THREADS=1``. Prints one JSON line: per
choice the final AP / AP50, the val loss, whether every logged loss was finite, and the
label-assignment flags raised (the default run is the "healthy sample raises none" check).

    python bench/loss_choices.py [--iters N] [--only default giou ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import common

CHOICES: dict[str, list[str]] = {
    "default": [],
    "giou": ["loss.box=giou"],
    "diou": ["loss.box=diou"],
    "ciou": ["loss.box=ciou"],
    "l1": ["loss.box=l1"],
    "focal": ["loss.classifier=focal"],
    "hard_negatives": ["loss.hard_negatives=true"],
}
NEW_RULES = {"no_anchor_match", "fg_starved", "classifier_background"}


def run_choice(name: str, extra: list[str], iters: int, out: Path) -> dict:
    items = [f"run.output_dir={out / name}", f"run.max_iters={iters}", "eval.every_epochs=0", "run.log_every=10"] + extra
    env = dict(os.environ, OMP_NUM_THREADS="1")
    started = time.perf_counter()
    done = subprocess.run(
        common.COCKPIT + ["run", str(common.SAMPLE), "--headless", "--no-check"] + common.set_args(items),
        cwd=common.REPO, capture_output=True, text=True, env=env, timeout=3600,
    )
    seconds = time.perf_counter() - started
    run_dir = next((out / name).glob("shapes-*"), None)
    if done.returncode != 0 or run_dir is None:
        return {"error": (done.stderr or done.stdout)[-400:], "seconds": seconds}
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in records if r["kind"] == "train"]
    last_eval = [r for r in records if r["kind"] == "eval"][-1]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    flagged = sorted({e["rule"] for e in events if e.get("kind") == "flag" and e.get("status") == "FLAGGED"})
    return {
        "iters": train[-1]["iter"],
        "AP": last_eval["eval"]["AP"],
        "AP50": last_eval["eval"]["AP50"],
        "val_loss": last_eval.get("val_loss", {}).get("loss"),
        "final_train_loss": train[-1]["loss"],
        "all_finite": all(isinstance(r["loss"], float) and math.isfinite(r["loss"]) for r in train),
        "new_flags": [rule for rule in flagged if rule in NEW_RULES],
        "other_flags": [rule for rule in flagged if rule not in NEW_RULES],
        "ms_per_iter": 1000 * sum(r["time"] for r in train) / len(train),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--only", nargs="*", default=list(CHOICES))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="cockpit-losses-") as tmp:
        for name in args.only:
            results[name] = run_choice(name, CHOICES[name], args.iters, Path(tmp))
            print(f"# {name}: {results[name]}", flush=True)
    common.emit({"bench": "loss_choices", "iters": args.iters, "results": results})


if __name__ == "__main__":
    main()
