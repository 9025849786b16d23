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
