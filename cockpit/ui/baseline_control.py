"""The cockpit's side of a baseline run: offer the runs, load the chosen one, show it.

A mixin of :class:`~cockpit.ui.app.CockpitApp` (kept out of app.py, which has enough
jobs). ``B`` in the losses pane posts ``LossPlot.BaselineRequested``; the runs are listed
and the chosen one read in worker threads (a run directory can be large), and the result
goes into the view-model (``CockpitState.baseline``), from which the pane draws.
"""

from __future__ import annotations

from pathlib import Path

from textual import work

from cockpit.ui.baseline import Baseline, BaselineError, load_baseline
from cockpit.ui.modals.baseline_picker import CLEAR, BaselinePickerScreen, RunChoice
from cockpit.ui.widgets.loss_plot import LossPlot


def run_choices(output_dirs: list[Path], exclude: str | None) -> list[RunChoice]:
    """The runs ``cockpit ls`` would list for these output directories, minus ``exclude``."""
    from cockpit.remote.runs import default_runs

    seen = {Path(exclude).resolve()} if exclude else set()
    found = [run for folder in output_dirs for run in default_runs(folder)]
    choices = []
    for run in sorted(found, key=lambda run: run.started or run.updated, reverse=True):
        if run.run_dir.resolve() in seen:
            continue
        seen.add(run.run_dir.resolve())
        total = f"/{run.total_iters}" if run.total_iters else ""
        best = f"AP50 {run.best_ap50:.3f}" if run.best_ap50 is not None else "no eval"
        label = f"{run.run_dir.name}  {run.state}  it {run.iteration}{total}  {best}"
        choices.append(RunChoice(str(run.run_dir), label))
    return choices


class BaselineMixin:
    """Baseline handling for the cockpit app (expects ``model``, ``config``, ``link``)."""

    def set_baseline(self, baseline: Baseline | None) -> None:
        self._dirty |= self.model.set_baseline(baseline)
        self.flush_redraws()

    # A named handler, not @on: Textual collects @on handlers only from message-pump
    # classes, and this mixin is not one.
    def on_loss_plot_baseline_requested(self, message: LossPlot.BaselineRequested) -> None:
        self._list_baselines()

    @work(thread=True, exclusive=True, group="baseline", exit_on_error=False, name="list runs")
    def _list_baselines(self) -> None:
        run_dir = self.link.run_dir
        # The live run's own folder is the truth (an attached run's config.toml resolves
        # relative paths against the run folder); the config's output_dir covers the rest.
        folders = [self.config.resolve_path(self.config.run.output_dir)]
        if run_dir is not None:
            folders.insert(0, Path(run_dir).resolve().parent)
        choices = run_choices(folders, str(run_dir) if run_dir is not None else None)
        current = self.model.baseline.run_dir if self.model.baseline is not None else None
        self.call_from_thread(self.push_screen, BaselinePickerScreen(choices, current), self._baseline_chosen)

    def _baseline_chosen(self, chosen: str | None) -> None:
        if chosen is None:
            return
        if chosen == CLEAR:
            self.set_baseline(None)
            self.notify("Baseline removed.", timeout=3)
            return
        self._load_baseline(chosen)

    @work(thread=True, exclusive=True, group="baseline", exit_on_error=False, name="load baseline")
    def _load_baseline(self, run_dir: str) -> None:
        try:
            baseline = load_baseline(run_dir)
        except BaselineError as error:
            self.call_from_thread(self.notify, str(error), title="No baseline", severity="warning")
            return
        self.call_from_thread(self.set_baseline, baseline)
        self.call_from_thread(self.notify, f"{baseline.name} (to it {baseline.last_iter:,})", title="Baseline", timeout=4)
