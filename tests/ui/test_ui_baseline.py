"""A baseline run in the losses pane: loading, clipping, ghost curves, legend, the B picker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_engine import losses_at
from textual.widgets import OptionList
from ui_support import settle

from cockpit.ui.baseline import BaselineError, baseline_from_series, load_baseline
from cockpit.ui.decimation import envelope
from cockpit.ui.loss_history import SERIES, LossHistory
from cockpit.ui.modals import BaselinePickerScreen
from cockpit.ui.widgets.loss_plot import LossPlot

SCALE = 1.3
"""The baseline's losses are the live script's x 1.3: always above, so the difference shows."""


def baseline_series(last: int = 400, step: int = 5) -> dict[str, tuple[list[float], list[float]]]:
    series = {}
    for name in SERIES:
        xs = list(range(step, last + 1, step))
        ys = []
        for i in xs:
            terms = {k: v * SCALE for k, v in losses_at(i).items()}
            ys.append(sum(terms.values()) if name == "loss" else terms[name])
        series[name] = (xs, ys)
    return series


def make_baseline(**kwargs):
    return baseline_from_series("shapes-base", "/runs/shapes-base", baseline_series(**kwargs), [(100, 0.3), (300, 0.5)])


def live_history(last: int = 240) -> LossHistory:
    history = LossHistory()
    for i in range(2, last + 1, 2):
        terms = losses_at(i)
        history.add(i, terms, sum(terms.values()))
    return history


def write_run(folder: Path, scale: float = 1.0, iters: int = 50) -> Path:
    folder.mkdir(parents=True)
    lines = []
    for it in range(5, iters + 1, 5):
        terms = {k: v * scale for k, v in losses_at(it).items()}
        lines.append(json.dumps({"kind": "train", "iter": it, "loss": sum(terms.values()), **terms}))
    lines.append(json.dumps({"kind": "eval", "iter": iters, "eval": {"AP50": 0.4, "per_class": {}}}))
    # A run killed mid-write: the last line is torn.
    (folder / "metrics.jsonl").write_text("\n".join(lines) + '\n{"kind": "train", "it', encoding="utf-8")
    return folder


def test_load_baseline_reads_a_damaged_run_dir(tmp_path):
    baseline = load_baseline(write_run(tmp_path / "runs" / "base-1", scale=2.0))
    assert baseline.name == "base-1" and baseline.last_iter == 50
    assert baseline.evals == [(50, 0.4)]
    at, value = baseline.value_at("loss", 23)
    assert at == 20 and value == pytest.approx(2.0 * sum(losses_at(20).values()))
    assert baseline.value_at("loss", 3) is None  # before its first record
    with pytest.raises(BaselineError, match="no such run directory"):
        load_baseline(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaselineError, match="no training records"):
        load_baseline(tmp_path / "empty")


def test_a_resumed_baseline_keeps_the_newest_value_of_a_repeated_iteration():
    series = {"loss": ([10, 20, 30, 20, 30, 40], [1.0, 2.0, 3.0, 5.0, 6.0, 7.0])}
    baseline = baseline_from_series("r", "/r", series, [])
    xs, ys = baseline.raw["loss"]
    assert xs.tolist() == [10, 20, 30, 40] and ys.tolist() == [1.0, 5.0, 6.0, 7.0]


def test_view_clips_to_the_live_iterations_and_keeps_extremes():
    xs = np.arange(1, 100_001, dtype=np.float64)
    ys = np.ones_like(xs)
    ys[50_000] = 9.0  # one spike, inside the range
    ys[5] = -9.0  # one dip, outside it
    px, py = envelope(xs, ys, 1_000, 60_000, 50)
    assert px.min() >= 1_000 and px.max() <= 60_000
    assert len(px) <= 100
    assert py.max() == 9.0 and py.min() == 1.0


def test_draw_puts_faint_baseline_curves_behind_the_live_ones():
    plot = LossPlot(live_history())
    plain = plot.draw(100, 20)
    plot.baseline = make_baseline()
    with_baseline = plot.draw(100, 20)
    dim = [span for span in with_baseline.spans if getattr(span.style, "dim", False) and span.style.color is not None]
    assert dim, "the ghost curves are drawn in dim colours"
    assert not [s for s in plain.spans if getattr(s.style, "dim", False) and s.style.color is not None]
    # The baseline's AP50 markers (hollow) and the live run's are both on the right axis.
    plot.evals = [(100, 0.42)]
    text = plot.draw(100, 20).plain
    assert "◇" in text and "◆" in text
    # Baseline curves only over the live run's iterations: its eval at 300 is past it 240.
    assert text.count("◇") == 1


def test_baseline_above_the_live_run_raises_the_value_axis():
    plot = LossPlot(live_history())
    top_label = lambda text: float(next(row.split("┤")[0] for row in text.plain.split("\n") if "┤" in row))  # noqa: E731
    before = top_label(plot.draw(100, 20))
    plot.baseline = baseline_from_series("big", "/big", {"loss": ([2, 240], [50.0, 40.0])}, [])
    assert top_label(plot.draw(100, 20)) > before


def test_legend_gives_the_difference_at_the_same_iteration():
    plot = LossPlot(live_history())
    plot.baseline = make_baseline()
    legend = plot.baseline_legend().plain
    live_total = sum(losses_at(240).values())
    assert legend == f"╌ vs shapes-base: total {live_total:.3f} (baseline {SCALE * live_total:.3f} at it 240)"
    plot.hidden = frozenset({"loss"})
    assert ": cls " in plot.baseline_legend().plain
    # The baseline ended before the live run: it is quoted at its last record.
    plot.baseline = make_baseline(last=100)
    assert "at it 100)" in plot.baseline_legend().plain
    assert "╌ vs" in plot.legend().plain


def write_ls_run(root: Path, name: str) -> Path:
    folder = write_run(root / name)
    (folder / "events.jsonl").write_text(
        json.dumps({"kind": "run_started", "time": 1.0, "total_iters": 50}) + "\n"
        + json.dumps({"kind": "finished", "time": 2.0, "iter": 50, "outcome": "finished", "state": "FINISHED"}) + "\n"
    )
    return folder


async def test_b_in_the_losses_pane_picks_a_baseline_from_the_runs(make_app, ui_config):
    runs = ui_config.resolve_path(ui_config.run.output_dir)
    wanted = write_ls_run(runs, "shapes-20250101-000000")
    app, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.loss_plot.focus()
        await pilot.press("B")
        await settle(pilot)
        assert isinstance(app.screen, BaselinePickerScreen)
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert str(wanted) in ids
        options.highlighted = ids.index(str(wanted))
        await pilot.press("enter")
        await settle(pilot)
        assert app.model.baseline is not None and app.model.baseline.name == wanted.name
        assert app.loss_plot.baseline is app.model.baseline
        assert f"vs {wanted.name}" in app.loss_plot.legend().plain
        # Again: the first choice now clears it.
        await pilot.press("B")
        await settle(pilot)
        assert app.screen.query_one(OptionList).get_option_at_index(0).id == "-clear-"
        await pilot.press("enter")
        await settle(pilot)
        assert app.model.baseline is None and "╌ vs" not in app.loss_plot.legend().plain


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_baseline_ghost_curves(snap_compare, make_app, size):
    app, _ = make_app(baseline=make_baseline())

    async def populated(pilot) -> None:
        await settle(pilot)
        pilot.app.clear_notifications()
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=populated)


async def test_the_attached_cockpit_draws_a_baseline_too(ui_config, preview_png):
    from fake_engine import FakeEngine, script

    from cockpit.ui.attached import create_attached_app

    class AttachedFake(FakeEngine):
        read_only = False
        read_only_reason = ""

    link = AttachedFake(script(image_path=str(preview_png)), run_dir="runs/shapes-1")
    app = create_attached_app(link, ui_config, baseline=make_baseline(), redraw_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "╌ vs shapes-base: total" in app.loss_plot.legend().plain
        assert any(getattr(s.style, "dim", False) for s in app.loss_plot.draw(100, 20).spans)
