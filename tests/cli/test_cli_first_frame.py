"""`cockpit run` in a terminal opens the cockpit before anything heavy: no torch import,
no data check and no run folder before the app runs (the start-up runs behind it)."""

from __future__ import annotations

import subprocess
import sys

from support import REPO, SAMPLE

PROBE = """
import sys
import cockpit.ui.app as ui

seen = {}

def run(self):
    # What had happened by the time the app took the terminal.
    seen["torch"] = "torch" in sys.modules
    seen["link"] = type(self.link).__name__
    seen["started"] = self.link._thread is not None

ui.CockpitApp.run = run
sys.stdout.isatty = lambda: True
from cockpit.cli import main

code = main(["run", sys.argv[1], "--set", f"run.output_dir='{sys.argv[2]}'"])
print("PROBE", seen["torch"], seen["link"], seen["started"], code)
"""


def test_the_app_runs_before_torch_is_imported_or_the_data_checked(tmp_path):
    out = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-c", PROBE, str(SAMPLE / "shapes.toml"), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = [text for text in done.stdout.splitlines() if text.startswith("PROBE")][0]
    # Quit before the start-up began: nothing trained, no folder, exit 130 (README: exit codes).
    assert line.split()[1:] == ["False", "StartupLink", "False", "130"]
    assert not out.exists()


def test_a_restart_without_a_checkpoint_starts_as_the_command_did(monkeypatch, tmp_path):
    """R after a refused start (or before any checkpoint) keeps --resume and --inject; with a
    checkpoint it resumes from that checkpoint, without the injections."""
    import cockpit.assembly as assembly
    import cockpit.ui.app as ui
    from cockpit import cli
    from cockpit.config import load_config
    from cockpit.engine.faults import parse_injection

    made = {}

    class QuitAtOnce:
        def __init__(self, link, config, config_path, engine_factory=None, **options):
            made.update(link=link, factory=engine_factory)
            self.link, self.config = link, config

        def run(self) -> None:
            """The user quit before the start-up began."""

    requests = []
    monkeypatch.setattr(ui, "create_app", QuitAtOnce)
    monkeypatch.setattr(assembly, "make_trainer", lambda request, headless: requests.append(request))
    config_path = SAMPLE / "shapes.toml"
    args = cli.build_parser().parse_args(
        ["run", str(config_path), "--resume", "runs/old", "--no-check", "--inject", "nan@5",
         "--set", f"run.output_dir='{tmp_path}'"])
    config = load_config(config_path, args.overrides)
    injections = [parse_injection("nan@5")]

    assert cli._run_in_cockpit(args, config, injections, None) == cli.EXIT_INTERRUPTED
    made["factory"](config, None)._build(config, None)
    made["factory"](config, "runs/new/checkpoints/last.pt")._build(config, None)
    assert [(r.resume, r.injections) for r in requests] == [
        ("runs/old", injections),
        ("runs/new/checkpoints/last.pt", []),
    ]
