"""The status bar shows a long wait under way (count/total, rate, ETA) and drops it when done."""

from __future__ import annotations

from cockpit.engine.events import Progress, ProgressTask
from cockpit.ui.state import STATUS, CockpitState
from cockpit.ui.widgets.status_bar import StatusBar


def test_status_bar_shows_progress_until_it_finishes() -> None:
    state = CockpitState("demo")
    changed = state.apply(Progress(ProgressTask.EVALUATION, 1200, 5000, "val images", 40.0, 95.0))
    assert changed == {STATUS}
    text = StatusBar.render_state(state, 200).plain
    assert "evaluating 1,200/5,000 val images (40/s, ETA 1m35s)" in text
    state.apply(Progress(ProgressTask.EVALUATION, 5000, 5000, "val images", 40.0, 0.0))
    assert "evaluating" not in StatusBar.render_state(state, 200).plain
