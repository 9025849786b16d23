"""Live rules about the machine rather than the model: is the CPU shared too thinly?

Pure functions over the load samples :class:`~cockpit.diagnostics.history.MetricHistory`
keeps (one per logged step: other processes' busy cores, usable cores, torch's threads
and the mean iteration time since the previous sample). Unit-tested on hand-made
histories; no clock, no tensor.
"""

from __future__ import annotations

import numpy as np

from cockpit.diagnostics.flags import CheckState, Verdict
from cockpit.diagnostics.history import MetricHistory
from cockpit.diagnostics.thresholds import DEFAULT_THRESHOLDS, Thresholds
from cockpit.diagnostics.verdicts import flagged, not_checked, ok
from cockpit.engine.events import Severity


def cpu_oversubscribed(
    history: MetricHistory, *, previous: CheckState | None = None, t: Thresholds = DEFAULT_THRESHOLDS
) -> Verdict:
    """Other processes take cores torch counts on, and the iterations slowed with them.

    Flags when, over the last ``cpu_recent`` samples, other processes keep at least
    ``cpu_busy_cores`` cores busy and either the iteration time rose to ``cpu_slowdown`` x
    its median over the quiet samples (a jump that comes with the load), or torch's threads
    plus that load exceed the usable cores by ``cpu_excess`` (busy from the start: no quiet
    time to compare with). ``previous`` gives hysteresis: a FLAGGED row clears only once
    the load falls below half of ``cpu_busy_cores``.
    """
    rule = "cpu_oversubscribed"
    load = history.load
    if len(load.others) < t.cpu_min_samples:
        return not_checked(rule, f"{len(load.others)}/{t.cpu_min_samples} load samples")
    others = load.others.values()
    times = load.iter_time.values()
    cores = load.cores.last()
    threads = load.threads.last()
    recent_others = float(np.median(others[-t.cpu_recent :]))
    recent_time = float(np.median(times[-t.cpu_recent :]))
    busy = t.cpu_busy_cores / 2 if previous == CheckState.FLAGGED else t.cpu_busy_cores
    quiet = times[: -t.cpu_recent][others[: -t.cpu_recent] < t.cpu_busy_cores / 2]
    baseline = float(np.median(quiet)) if quiet.size else float("nan")
    evidence = f"other processes busy on {recent_others:.1f} of {cores:.0f} core(s); torch uses {threads:.0f} thread(s)"
    if recent_others < busy:
        return ok(rule, evidence)
    jumped = quiet.size > 0 and baseline > 0 and recent_time >= t.cpu_slowdown * baseline
    crowded = threads + recent_others > cores + t.cpu_excess
    if not (jumped or crowded):
        return ok(rule, evidence)
    if jumped:
        evidence += f"; iterations {recent_time:.3f}s against {baseline:.3f}s while the machine was quiet ({recent_time / baseline:.1f}x)"
    else:
        evidence += f"; iterations {recent_time:.3f}s"
    free = max(1, int(cores - recent_others + 0.5))
    fix = (
        f"set run.threads = {free} (the free cores) or \"auto\" (decides from the free cores at start), "
        "or move the other work off this machine (`top` shows who); on a GPU run keep data.num_workers "
        "below the free cores too"
    )
    return flagged(
        rule,
        Severity.WARNING,
        evidence,
        "more runnable threads than cores: torch's OpenMP threads wait for each other at every "
        "barrier while one of them waits for a time slice",
        fix,
        others=recent_others,
        cores=cores,
        threads=threads,
        iter_time=recent_time,
        baseline=baseline,
    )
