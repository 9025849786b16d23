"""The ``cockpit`` command: run, attach, ls, check, init, report, compare, export, preview.

The arguments are declared in :mod:`cockpit.cli_args` (argparse only): ``cockpit --help`` must answer at once, without
torch. Each subcommand imports what it needs when it runs. Bad input ends with a one-line
(or one-line-per-problem) message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cockpit.cli_args import build_parser

# One rule, also in README: 0 the command did its job (a run finished or was stopped, a
# check passed); 1 the data or the run failed (pre-flight errors, data that cannot be found
# or read, a failed run or detach); 2 the command could not be used as given: bad
# arguments, a config that does not parse or validate, a path named on the command line
# (--resume, a run directory) that is not there; 130 interrupted (or quit) before a run started.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _error(message: str) -> None:
    print(f"cockpit: {message}", file=sys.stderr)


def _load_baseline(args, *, headless: bool = False, quiet: bool = False):
    """(baseline or None, ok): the --baseline run read once, or a one-line error.

    Without a cockpit to draw it (headless, detached) it is ignored with a note.
    """
    if args.baseline is None:
        return None, True
    if headless:
        if not quiet:
            _error("--baseline is drawn in the cockpit's Losses pane; without the cockpit it is ignored")
        return None, True
    from cockpit.ui.baseline import BaselineError, load_baseline

    try:
        return load_baseline(args.baseline), True
    except BaselineError as error:
        _error(str(error))
        return None, False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.version:
        from cockpit import __version__

        print(f"cockpit {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler = {
        "run": _cmd_run,
        "attach": _cmd_attach,
        "ls": _cmd_ls,
        "check": _cmd_check,
        "init": _cmd_init,
        "report": _cmd_report,
        "compare": _cmd_compare,
        "export": _cmd_export,
        "preview": _cmd_preview,
    }[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


def _load(args) -> "object | None":
    from cockpit.config import ConfigError, load_config

    try:
        return load_config(args.config, args.overrides)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return None


def _preflight(config, *, as_json: bool = False, quiet_ok: bool = False):
    """Run the pre-flight check; returns (report or None, ok)."""
    from cockpit.data.errors import DatasetError
    from cockpit.diagnostics.preflight import format_table, run_preflight

    from cockpit.cli_progress import terminal_progress

    progress = terminal_progress()
    try:
        report = run_preflight(config, progress=progress)
    except DatasetError as error:
        _error(str(error))
        return None, False
    finally:
        getattr(progress, "close", lambda: None)()
    if as_json:
        import json

        print(json.dumps(report.to_dict(), indent=2))
    elif not (quiet_ok and not report.has_errors):
        print(format_table(report))
    return report, not report.has_errors


def _cmd_check(args) -> int:
    config = _load(args)
    if config is None:
        return EXIT_USAGE
    report, ok = _preflight(config, as_json=args.json)
    warnings = report.counts()["warning"] if report is not None else 0
    if ok and args.strict and warnings:
        if not args.json:
            print(f"{args.config}: {warnings} warning(s), failing because of --strict")
        return EXIT_FAILED
    if ok and not args.json:
        print(f"{args.config}: OK" + (f" ({warnings} warning(s))" if warnings else ""))
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_init(args) -> int:
    from cockpit.config.starter import write_starter

    try:
        written = write_starter(args.path, force=args.force)
    except FileExistsError as error:
        _error(f"{error} exists; use --force to overwrite")
        return EXIT_USAGE
    for path in written:
        print(f"wrote {path}")
    print(f"next: cockpit check {args.path} && cockpit run {args.path}")
    return EXIT_OK


def _cmd_report(args) -> int:
    if not args.run_dir.is_dir():
        _error(f"{args.run_dir}: no such run directory")
        return EXIT_USAGE
    from cockpit.cli_progress import terminal_progress
    from cockpit.report.build import build_report

    progress = terminal_progress()
    try:
        paths = build_report(args.run_dir, args.output, progress=progress)
    finally:
        getattr(progress, "close", lambda: None)()
    print(f"report: {paths.html}")
    print(f"markdown: {paths.markdown}")
    print(f"metrics: {paths.csv}")
    for line in paths.skipped:
        print(f"note: {line}", file=sys.stderr)
    return EXIT_OK


def _cmd_compare(args) -> int:
    from cockpit.report.compare import CompareError, build_comparison

    try:
        paths = build_comparison(args.run_dirs, args.output)
    except CompareError as error:
        _error(str(error))
        return EXIT_USAGE
    print(f"compare: {paths.html}")
    print(f"markdown: {paths.markdown}")
    return EXIT_OK


def _cmd_export(args) -> int:
    from cockpit.export.tensorboard import TensorBoardMissing, export_run

    if not args.run_dir.is_dir():
        _error(f"{args.run_dir}: no such run directory")
        return EXIT_USAGE
    try:
        summary = export_run(args.run_dir, args.tensorboard)
    except TensorBoardMissing as error:
        _error(str(error))
        return EXIT_USAGE
    except OSError as error:
        _error(f"{args.tensorboard}: {error.strerror or error}")
        return EXIT_FAILED
    print(f"tensorboard: {summary.scalars} scalars under {len(summary.tags)} tags in {args.tensorboard}")
    print(f"view: tensorboard --logdir {args.tensorboard}")
    return EXIT_OK


def _cmd_preview(args) -> int:
    config = _load(args)
    if config is None:
        return EXIT_USAGE
    from cockpit.data.errors import DatasetError
    from cockpit.preview_cli import print_preview

    try:
        return print_preview(config, args.split, args.index, width=args.width)
    except DatasetError as error:
        _error(str(error))
        return EXIT_FAILED


def _cmd_run(args) -> int:
    import os

    # Under torchrun only rank 0 checks the data and may open the cockpit; the others are silent.
    rank = os.environ.get("RANK", "0")
    if args.detach and (args.nproc > 1 or "RANK" in os.environ):
        _error("--detach runs a single process; it cannot be combined with --nproc or torchrun")
        return EXIT_USAGE
    if args.nproc > 1:
        if "RANK" in os.environ:
            _error("--nproc starts its own torchrun; under torchrun, leave it out")
            return EXIT_USAGE
        if _load(args) is None:
            return EXIT_USAGE
        from cockpit.engine.distributed import launch

        launch(args.argv, args.nproc)  # becomes torchrun: never returns
    config = _load(args)
    if config is None:
        return EXIT_USAGE
    from cockpit.engine.host_memory import keep_freed_memory

    # Before any thread: the trainer's (and pre-flight's) allocations then share the one arena.
    keep_freed_memory()
    headless = args.headless or not sys.stdout.isatty() or rank != "0"
    # The cockpit opens at once and checks the data itself (cockpit/startup.py).
    in_cockpit = not (headless or args.detach)
    checked = _checked_start(args, config, rank, scan=not in_cockpit)
    if isinstance(checked, int):
        return checked
    injections, preflight = checked
    if in_cockpit:
        baseline, ok = _load_baseline(args)
        return _run_in_cockpit(args, config, injections, baseline) if ok else EXIT_USAGE
    if args.detach:
        return _run_detached(args, preflight)
    baseline, ok = _load_baseline(args, headless=True, quiet=rank != "0")
    if not ok:
        return EXIT_USAGE
    from cockpit.assembly import make_trainer
    from cockpit.engine.session import RunRequest, run_headless

    request = RunRequest(config=config, config_path=args.config, resume=args.resume, injections=injections, preflight=preflight)
    try:
        trainer = make_trainer(request, headless=True)
    except Exception as error:  # noqa: BLE001 - ResumeError, CheckpointError, OSError: all one line
        _error(str(error))
        return EXIT_USAGE
    _record_process(trainer)
    code = run_headless(trainer)
    if rank == "0":
        _print_exit_summary(trainer.run_dir, args.config, _given_overrides(args))
    return code


def _parsed_injections(args):
    """``--inject`` values parsed, or None (after one line) when one is malformed."""
    from cockpit.engine.faults import parse_injection

    try:
        return [parse_injection(text) for text in args.inject]
    except ValueError as error:
        _error(str(error))
        return None


def _checked_start(args, config, rank: str, scan: bool = True):
    """(injections, pre-flight report or None) when the run may start, else the exit code.

    ``scan`` False leaves the pre-flight scan to the caller (the cockpit runs it behind its
    first frame); the checks that need no scan still run here."""
    injections = _parsed_injections(args)
    if injections is None:
        return EXIT_USAGE
    if args.no_check:
        missing = _missing_data_path(config)
        if missing is not None:
            _error(f"{missing} (--no-check skips the data scan, not this)")
            return EXIT_FAILED
        return injections, None
    if rank != "0" or not scan:
        return injections, None
    report, ok = _preflight(config, quiet_ok=True)
    if not ok:
        _error("pre-flight check found errors (see above); fix them or pass --no-check")
        return EXIT_FAILED
    return injections, report.to_dict() if report is not None else None


def _run_in_cockpit(args, config, injections, baseline) -> int:
    """The Textual cockpit until the user quits; then the exit summary.

    The app is drawn first: the data check and the trainer's construction (torch's import
    included) run behind it in a :class:`~cockpit.startup.StartupLink`."""
    from cockpit.data.json_parse import parse_in_steps
    from cockpit.engine.dist_context import detect
    from cockpit.engine.events import RunState, WarningCategory
    from cockpit.startup import StartupLink
    from cockpit.ui.app import create_app
    from cockpit.ui.widgets.config_editor import config_changes

    check_data = not args.no_check
    # Annotation files load behind the first frame: the UI thread must keep the GIL coming.
    parse_in_steps()

    def recorded(trainer):
        # The cockpit owns the terminal now: a problem goes to its warnings, not to stderr.
        _record_process(trainer, warn=lambda message: trainer.warn(message, WarningCategory.RUN_FILES))

    def build(new_config, preflight, resume=args.resume, injections=injections):
        from cockpit.assembly import make_trainer
        from cockpit.engine.session import RunRequest

        request = RunRequest(config=new_config, config_path=args.config, resume=resume, injections=injections,
                             preflight=preflight)
        return make_trainer(request, headless=False)

    def start(new_config, resume_from):
        # Also the Config pane's restart: a new run (folder) from the last checkpoint, with
        # the data checked again (the edit may be what fixes it). Without a checkpoint (the
        # start was refused, or nothing was saved yet) it starts as this command did.
        builder = build if resume_from is None else (lambda c, p: build(c, p, resume=resume_from, injections=[]))
        return StartupLink(new_config, builder, check_data=check_data, on_built=recorded)

    link = start(config, None)
    # No restart in a multi-process run: every rank would have to restart.
    single = not detect().enabled
    app = create_app(link, config, args.config, engine_factory=start if single else None, baseline=baseline)
    app.run()
    # After a restart from the app, its link is a newer one than the one built here.
    link = getattr(app, "link", link)
    link.close(timeout=60)
    if link.failure is not None:
        return _report_startup_failure(link)
    if not link.started:
        return EXIT_INTERRUPTED  # quit while the data was checked or the model built: nothing ran
    # Edits made in the Config pane (live or by a restart) go into the resume command as
    # --set: the run folder's config.toml keeps data paths relative to the original file.
    _print_exit_summary(link.run_dir, args.config, {**_given_overrides(args), **config_changes(config, app.config)})
    return EXIT_OK if link.state is not RunState.FAILED else EXIT_FAILED


def _report_startup_failure(link) -> int:
    """After the cockpit closed on a run that could not start: why, on the terminal."""
    if link.failure.preflight and link.preflight_table:
        print(link.preflight_table)
    _error(link.failure.summary + ("; fix them or pass --no-check" if link.failure.preflight else ""))
    return EXIT_USAGE if _is_usage_error(link.build_error) else EXIT_FAILED


def _is_usage_error(error: BaseException | None) -> bool:
    """A trainer refused for how the command was given (``--resume``, an extra the config asks
    for), not because the run failed. torch is loaded by then: these imports cost nothing."""
    if error is None:
        return False
    from cockpit.engine.checkpoint import CheckpointError
    from cockpit.engine.checkpointing import ResumeError
    from cockpit.export.tensorboard import TensorBoardMissing

    return isinstance(error, (ResumeError, CheckpointError, TensorBoardMissing))


def _missing_data_path(config) -> str | None:
    """The first data file or folder the config names that does not exist, said in one line.

    ``--no-check`` skips scanning every target, but a run whose data cannot even be found
    would only fail at start-up with the same reason repeated; refuse it here instead."""
    keys = {"coco": ("train", "val", "train_images", "val_images"), "masks": ("train", "val")}
    for key in keys.get(config.data.format, ()):
        value = getattr(config.data, key, None)
        if not value:
            continue
        path = config.resolve_path(value)
        if path is not None and not path.exists():
            return f"data.{key}: {path} does not exist"
    return None


def _given_overrides(args) -> dict:
    """The ``--set`` values of this command, for the resume command it prints."""
    from cockpit.config.loader import parse_override

    return dict(parse_override(item) for item in args.overrides)


def _print_exit_summary(run_dir, config_path, changes=None) -> None:
    """Where the run is, its last checkpoint and best AP, and the commands to go on."""
    if run_dir is None:
        return
    from cockpit.exit_summary import exit_lines

    print("\n".join(exit_lines(run_dir, config_path, changes)), flush=True)


def _record_process(trainer, warn=_error) -> None:
    """server.json with this pid, so `cockpit ls` can tell this run's running from stale."""
    if trainer.run_dir is None:
        return
    from cockpit.remote.runs import remember_output_dir, write_server_info

    try:
        write_server_info(trainer.run_dir, socket=None, config_dir=getattr(trainer.config, "base_dir", None))
        remember_output_dir(trainer.run_dir)
    except OSError as error:
        warn(f"cannot write {trainer.run_dir}/server.json: {error.strerror}")


def _run_detached(args, preflight) -> int:
    from cockpit.remote.daemon import DetachError, DetachRequest, spawn

    if args.baseline is not None:
        _error(f"--baseline is drawn by the cockpit: pass it to `cockpit attach RUN_DIR --baseline {args.baseline}`")

    request = DetachRequest(
        config_path=str(args.config.resolve()),
        overrides=list(args.overrides),
        # Absolute: the background process must not depend on where the user stood.
        resume=args.resume if args.resume in (None, "auto") else str(Path(args.resume).expanduser().resolve()),
        inject=list(args.inject),
        preflight=preflight,
    )
    try:
        detached = spawn(request)
    except DetachError as error:
        _error(str(error))
        return EXIT_FAILED
    import shlex

    print(f"run: {detached.run_dir} (training started)")
    print(f"pid {detached.pid}; log: {detached.run_dir / 'cockpit.log'}")
    print(f"attach: cockpit attach {shlex.quote(str(detached.run_dir))}")
    return EXIT_OK


def _cmd_ls(args) -> int:
    from cockpit.remote.runs import default_runs, find_runs, format_table, remembered_output_dirs, skipped_note

    if args.output_dir is not None and not args.output_dir.is_dir():
        _error(f"{args.output_dir}: no such directory")
        return EXIT_USAGE
    runs = find_runs(args.output_dir) if args.output_dir is not None else default_runs()
    if args.quiet:
        for run in runs:
            print(run.run_dir)
        return EXIT_OK
    if not runs:
        if args.output_dir is not None:
            print(f"no runs under {args.output_dir}")
        else:
            looked = ", ".join(["./runs", *(str(p) for p in remembered_output_dirs())])
            print(f"no runs under {looked}, and no detached runs; "
                  "name the folder (a config's run.output_dir): cockpit ls OUTPUT_DIR")
        return EXIT_OK
    print(format_table(runs))
    note = skipped_note(runs)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def detach_message(run_dir, state: str) -> str:
    """What is true of the run a cockpit just detached from (``state``: the RunState value)."""
    if state == "PAUSED":
        return f"detached from {run_dir}; the run stays paused until resumed (cockpit attach {run_dir}, then p)"
    return f"detached from {run_dir}; the run goes on (cockpit attach {run_dir})"


def _cmd_attach(args) -> int:
    from cockpit.config import ConfigError, load_config
    from cockpit.remote.client import AttachError, RemoteLink
    from cockpit.remote.runs import RunLookupError, resolve_attach_target

    headless = args.headless or not sys.stdout.isatty()
    baseline, ok = _load_baseline(args, headless=headless)
    if not ok:
        return EXIT_USAGE
    try:
        run_dir = resolve_attach_target(args.target)
        link = RemoteLink(run_dir)
    except (RunLookupError, AttachError) as error:
        _error(str(error))
        return EXIT_USAGE
    if headless:
        from cockpit.engine.headless import HeadlessPrinter

        printer = HeadlessPrinter(sys.stdout)
        link.subscribe(printer)
        link.start()
        try:
            link.wait()
        finally:
            link.close(timeout=5)
        return EXIT_OK
    from cockpit.runfiles.layout import CONFIG

    config_path = run_dir / CONFIG
    try:
        config = load_config(config_path)
    except ConfigError as error:
        _error(f"{config_path}: {str(error).splitlines()[0]}")
        return EXIT_USAGE
    from cockpit.ui.attached import create_attached_app

    app = create_attached_app(link, config, config_path, baseline=baseline)
    app.run()
    link.close(timeout=5)
    if not link.read_only_reason and not link.state.is_terminal:
        print(detach_message(run_dir, link.state.value))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
