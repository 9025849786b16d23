"""The ``cockpit`` command line: every subcommand's arguments, and nothing else.

Only argparse is imported here, so ``cockpit --help`` answers without importing torch;
:mod:`cockpit.cli` runs what the arguments ask for.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit",
        description="A terminal training cockpit for torchvision Faster R-CNN detectors.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    _add_attach_and_ls(sub)
    _add_check_init_report(sub)
    _add_compare_and_export(sub)
    preview = sub.add_parser("preview", help="print one sample with its GT boxes and target dict")
    preview.add_argument("config", type=Path)
    preview.add_argument("--index", type=int, default=0)
    preview.add_argument("--split", choices=("train", "val"), default="train")
    preview.add_argument("--width", type=int, default=None, help="image width in terminal cells")
    _add_set(preview)
    return parser


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config field (repeatable), e.g. --set optim.lr=0.01",
    )


def _add_baseline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="RUN_DIR",
        help="draw this earlier run's loss curves faintly behind the live ones (B in the Losses pane picks another)",
    )


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="train a run (opens the cockpit in a terminal)")
    run.add_argument("config", type=Path, help="the run's TOML config")
    run.add_argument("--headless", action="store_true", help="print log lines instead of opening the cockpit")
    run.add_argument("--resume", metavar="auto|PATH", help="continue the newest run of this name, or a run dir / checkpoint")
    run.add_argument("--no-check", action="store_true", help="skip the pre-flight dataset check")
    run.add_argument(
        "--detach",
        action="store_true",
        help="train in a background process that outlives the terminal; `cockpit attach` opens the cockpit on it",
    )
    run.add_argument(
        "--nproc",
        type=int,
        default=0,
        metavar="N",
        help="train on N processes (one per GPU) through torch.distributed.run; same as torchrun --nproc_per_node=N -m cockpit run ...",
    )
    run.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="KIND@ITER",
        help="testing aid: inject a fault (oom or nan) at an iteration, e.g. --inject oom@5",
    )
    _add_baseline(run)
    _add_set(run)


def _add_attach_and_ls(sub) -> None:
    attach = sub.add_parser("attach", help="open the cockpit on a detached run (q detaches; the run goes on)")
    attach.add_argument(
        "target",
        nargs="?",
        default="auto",
        metavar="RUN_DIR|OUTPUT_DIR|auto",
        help="a run directory; an output directory (its newest running run); or auto (default): "
        "the newest running run under ./runs or among your detached runs",
    )
    attach.add_argument("--headless", action="store_true", help="print the run's log lines instead of opening the cockpit")
    _add_baseline(attach)

    ls = sub.add_parser("ls", help="list runs: state (running/finished/failed/stale), iteration, best AP50, age")
    ls.add_argument("output_dir", nargs="?", type=Path, help="where the runs are (default ./runs, plus your detached runs)")
    ls.add_argument("-q", "--quiet", action="store_true",
                    help="print only the run directories, one per line (e.g. cockpit compare $(cockpit ls -q | head -2))")


def _add_check_init_report(sub) -> None:
    check = sub.add_parser("check", help="validate a config and pre-flight check its datasets")
    check.add_argument("config", type=Path)
    check.add_argument("--json", action="store_true", help="print the pre-flight report as JSON")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too (for CI), not only on errors")
    _add_set(check)

    init = sub.add_parser("init", help="write a commented starter config (and a small synthetic dataset)")
    init.add_argument("path", nargs="?", type=Path, default=Path("cockpit.toml"))
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    report = sub.add_parser("report", help="write report.html / report.md / metrics.csv for a run directory")
    report.add_argument("run_dir", type=Path)
    report.add_argument("-o", "--output", type=Path, help="output folder (default RUN_DIR/report)")


def _add_compare_and_export(sub) -> None:
    compare = sub.add_parser(
        "compare", help="compare runs side by side: compare.html / compare.md (curves, table, config and data differences)"
    )
    compare.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="two or more run directories (see cockpit ls)")
    compare.add_argument("-o", "--output", type=Path, help="output folder (default ./compare-<timestamp>)")

    export = sub.add_parser("export", help="export a run directory to another tool's format")
    export.add_argument("run_dir", type=Path)
    export.add_argument("--tensorboard", type=Path, metavar="OUT_DIR", required=True,
                        help="write TensorBoard event files (every scalar of metrics.jsonl, the config as text) into OUT_DIR")
