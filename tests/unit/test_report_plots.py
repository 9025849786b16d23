"""Plot helpers: decimation, smoothing, PNG output; and the previews' box drawing."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

from PIL import Image
from report_fixtures import make_damaged_run, make_finished_run, make_long_metrics

from cockpit.report import plots
from cockpit.report.previews import GT_COLOR, PRED_COLOR, draw_boxes
from cockpit.report.rundir import read_run_dir


def _is_png(data: bytes | None) -> bool:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
        return image.format == "PNG"


def test_decimate_bounds_points_and_keeps_the_envelope() -> None:
    n = 100_000
    xs = list(range(n))
    ys = [1.0] * n
    ys[31_337] = 500.0  # one spike
    ys[77_000] = math.nan
    out = plots.decimate(xs, ys, max_points=2000)
    assert len(out.x) == len(out.y) == len(out.lo) == len(out.hi) == 2000
    assert float(out.hi.max()) == 500.0 and float(out.lo.min()) == 1.0
    assert out.x[0] < out.x[-1]


def test_decimate_leaves_short_series_alone() -> None:
    out = plots.decimate([1, 2, 3], [0.5, math.inf, 0.25])
    assert list(out.x) == [1, 3] and list(out.y) == [0.5, 0.25]


def test_ema_is_debiased_and_skips_nan() -> None:
    smooth = plots.ema([2.0, 2.0, math.nan, 2.0], span=10)
    assert smooth == [2.0, 2.0, 2.0, 2.0]
    assert math.isnan(plots.ema([math.nan], 5)[0])


def test_every_plot_is_a_png(tmp_path: Path) -> None:
    run = read_run_dir(make_finished_run(tmp_path))
    for make in (plots.loss_plot, plots.lr_plot, plots.memory_plot, plots.ap_plot):
        assert _is_png(make(run)), make.__name__
    assert _is_png(plots.preflight_plot(run.preflight))


def test_plots_without_data_return_none(tmp_path: Path) -> None:
    run = read_run_dir(make_damaged_run(tmp_path))
    assert plots.ap_plot(run) is None
    assert plots.preflight_plot(run.preflight) is None
    assert _is_png(plots.loss_plot(run))
    empty = tmp_path / "empty"
    empty.mkdir()
    run = read_run_dir(empty)
    assert plots.loss_plot(run) is None and plots.lr_plot(run) is None and plots.memory_plot(run) is None


def test_long_history_plots(tmp_path: Path) -> None:
    run_dir = make_finished_run(tmp_path)
    make_long_metrics(run_dir, 6000)
    run = read_run_dir(run_dir)
    assert len(run.train) == 6000
    assert _is_png(plots.loss_plot(run))


def test_draw_boxes_colours_and_threshold() -> None:
    image = Image.new("RGB", (100, 80), (255, 255, 255))
    png, caption = draw_boxes(
        image, [[10, 10, 40, 40]], [1], [[50, 20, 90, 70], [0, 0, 5, 5]], [2, 1], [0.9, 0.1], ["cat", "dog"], 0.5
    )
    drawn = Image.open(io.BytesIO(png)).convert("RGB")
    colors = {color for _count, color in drawn.getcolors(maxcolors=1 << 20)}
    assert GT_COLOR in colors and PRED_COLOR in colors
    assert "1 ground-truth" in caption and "1 prediction(s)" in caption and "1 lower-scored" in caption


def test_importing_the_report_package_stays_light() -> None:
    code = (
        "import sys, cockpit.report\n"
        "heavy = [m for m in ('matplotlib', 'torch', 'pydantic', 'PIL', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
