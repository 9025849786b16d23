"""cockpit.diagnostics imports without Textual, Rich or torch (the engine thread and
`cockpit check` must not pay for the UI)."""

from __future__ import annotations

import subprocess
import sys


def test_diagnostics_import_no_ui_libraries():
    code = (
        "import sys\n"
        "import cockpit.diagnostics.preflight, cockpit.diagnostics.rules, cockpit.diagnostics.hook\n"
        "import cockpit.diagnostics.checklist, cockpit.diagnostics.flight_recorder, cockpit.diagnostics.history\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'torch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
