"""The loss chart drawn by LossPlot.draw (braille, numpy): shape, spikes, ticks, edge cases."""

from __future__ import annotations

from cockpit.ui.decimation import buckets_of
from cockpit.ui.loss_history import LossHistory
from cockpit.ui.braille_chart import linear_ticks as _linear_ticks
from cockpit.ui.widgets.loss_plot import LossPlot
from ui_support import loss_history


def chart_rows(text) -> list[str]:
    return text.plain.split("\n")


def test_draw_fills_the_canvas_with_axes_and_labels():
    plot = LossPlot(loss_history(500))
    rows = chart_rows(plot.draw(100, 20))
    assert len(rows) == 20
    assert rows[-2].lstrip().startswith("└") and "┬" in rows[-2]
    assert any("┤" in row for row in rows[:-2])
    assert any(0x2800 < ord(ch) <= 0x28FF for row in rows for ch in row)


def test_a_one_step_spike_reaches_the_top_row():
    plot = LossPlot(loss_history(100_000 // 50, spike_at=777))
    plot.hidden = frozenset({"loss"})
    top = chart_rows(plot.draw(100, 20))[0]
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in top)


def test_log_scale_window_and_ap_axis_draw():
    plot = LossPlot(loss_history(3000))
    plot.evals = [(1000, 0.3), (2700, 0.7)]
    plot.log_scale, plot.window = True, 500
    text = plot.draw(90, 16)
    assert len(chart_rows(text)) == 16
    assert text.plain.count("◆") == 1  # only the eval inside the last 500 iterations
    plot.window = 0
    assert text.plain != plot.draw(90, 16).plain


def test_empty_hidden_and_tiny_panes_say_so():
    assert "waiting" in LossPlot(LossHistory()).draw(80, 20).plain
    plot = LossPlot(loss_history(10))
    plot.hidden = frozenset({"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss"})
    assert "hidden" in plot.draw(80, 20).plain
    assert "too small" in LossPlot(loss_history(10)).draw(10, 3).plain


def test_linear_ticks_are_round_and_inside():
    ticks = _linear_ticks(0.02, 2.7, 6)
    assert ticks == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert all(0.3 <= t <= 0.35 for t in _linear_ticks(0.3, 0.35, 5))


def test_buckets_of_keeps_each_stretch_extremes():
    xs = list(range(10))
    ys = [0, 5, 1, 1, -3, 1, 1, 1, 9, 2]
    buckets = buckets_of(xs, ys, 2)
    assert [(b.lo, b.lo_x, b.hi, b.hi_x, b.last, b.n) for b in buckets] == [(-3, 4, 5, 1, -3, 5), (1, 5, 9, 8, 2, 5)]


def test_x_labels_are_whole_numbers_even_at_the_right_edge():
    # 100 iterations on a pane this wide put the last tick (100) in the last column: its
    # label must read 100, not be cut to "10".
    for width in (60, 79, 80, 100, 120):
        label_line = chart_rows(LossPlot(loss_history(100)).draw(width, 20))[-1]
        labels = [int(label) for label in label_line.split()]
        assert labels and labels == sorted(set(labels)), label_line  # a cut "100" reads "10": out of order
        assert labels[-1] <= 100 and len(label_line) <= width
