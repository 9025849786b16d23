"""Routine redraws repaint only what changed: no screen layout for new text of the same
height (cockpit/ui/static_text.py), and the loss chart's rows come from one cached drawing
(the line-API ``_Chart``)."""

from __future__ import annotations

import contextlib

import pytest
from textual.app import App, ComposeResult
from textual.content import Content
from textual.widgets import Static

from cockpit.ui.loss_history import LossHistory
from cockpit.ui.static_text import show_text
from cockpit.ui.widgets.loss_plot import LossPlot, _Chart
from ui_support import loss_history


class _OneStatic(App[None]):
    CSS = "Static { width: 40; height: auto; }"

    def compose(self) -> ComposeResult:
        yield Static(Content("it 1  loss 0.500"))


def _record_refreshes(static: Static) -> list[bool]:
    """The ``layout`` flag of every refresh the Static asks for from now on."""
    calls: list[bool] = []
    original = static.refresh

    def refresh(*regions, layout: bool = False, **kwargs):
        calls.append(layout)
        return original(*regions, layout=layout, **kwargs)

    static.refresh = refresh
    return calls


@contextlib.asynccontextmanager
async def _one_static():
    """A mounted 40-column Static, and the layout flags of the refreshes it asks for."""
    app = _OneStatic()
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        static = app.query_one(Static)
        yield pilot, static, _record_refreshes(static)


async def test_same_height_text_repaints_without_a_layout():
    async with _one_static() as (pilot, static, calls):
        show_text(static, Content("it 2  loss 0.480"))
        assert calls == [False]
        await pilot.pause()
        assert str(static.render()) == "it 2  loss 0.480"
        assert static.size.height == 1


async def test_unchanged_text_and_styles_do_nothing_but_a_new_style_repaints():
    async with _one_static() as (pilot, static, calls):
        show_text(static, Content("it 1  loss 0.500"))
        assert calls == []
        show_text(static, Content.styled("it 1  loss 0.500", "bold"))
        assert calls == [False]


@pytest.mark.parametrize(
    "new",
    ["it 2\nloss 0.480", "x" * 60],  # another line count; a line that now wraps at 40 columns
    ids=["more-lines", "wraps"],
)
async def test_text_whose_height_may_change_asks_for_a_layout(new: str):
    async with _one_static() as (pilot, static, calls):
        show_text(static, Content(new))
        assert calls == [True]
        await pilot.pause()
        assert static.size.height == 2


async def test_wrapped_text_keeping_its_wrapped_height_repaints_without_a_layout():
    # The loss legend on a narrow pane: one line that wraps to two, new numbers every frame.
    async with _one_static() as (pilot, static, calls):
        show_text(static, Content("t total 0.614  AP50 0.626 (it 150)  val 0.565"))
        await pilot.pause()
        assert static.size.height == 2
        calls.clear()
        show_text(static, Content("t total 0.598  AP50 0.626 (it 150)  val 0.565"))
        assert calls == [False]
        await pilot.pause()
        assert static.size.height == 2
        # Wrapped to three lines now: the height changes, so a layout.
        show_text(static, Content("t total 0.598  AP50 0.626 (it 150)  val 0.565  AP 0.301 (it 150)  g linear  m raw"))
        assert calls == [False, True]
        await pilot.pause()
        assert static.size.height == 3


async def test_a_box_laid_out_for_older_text_is_laid_out_again():
    # A layout cached from another size (a pane maximized, then restored) can leave the
    # box at the height of older text; the next new text then asks for a layout.
    async with _one_static() as (pilot, static, calls):
        static.update(Content("it 2\nloss 0.480"), layout=False)  # two lines in a one-line box
        await pilot.pause()
        assert static.size.height == 1
        calls.clear()
        show_text(static, Content("it 3\nloss 0.470"))
        assert calls == [True]
        await pilot.pause()
        assert static.size.height == 2


async def test_a_new_preview_image_is_repainted_without_a_layout(make_app, preview_png):
    from fake_engine import preview_event
    from ui_support import settle

    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        image = app.preview_panel.query_one(".image", Static)
        before = image.content
        calls = _record_refreshes(image)
        fake.emit(preview_event(str(preview_png), 400, predict=True))
        await settle(pilot)
        assert image.content is not before  # the new drawing is in place
        assert calls and not any(calls)  # repainted, never a layout of the screen


class _PlotApp(App[None]):
    CSS = "LossPlot { width: 70; height: 22; }"

    def compose(self) -> ComposeResult:
        yield LossPlot(loss_history(300, decaying=True))


async def test_the_chart_rows_are_the_drawing_and_are_drawn_once_per_change():
    app = _PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        plot, chart = app.query_one(LossPlot), app.query_one(_Chart)
        width, height = chart.size.width, chart.size.height
        drawn = plot.draw(width, height).plain.split("\n")
        rows = [chart.render_line(y).text for y in range(height)]
        assert [row.rstrip() for row in rows] == [row.rstrip() for row in drawn]
        assert all(len(row) == width for row in rows)

        calls = []
        original = plot.draw
        plot.draw = lambda w, h: calls.append((w, h)) or original(w, h)
        for y in range(height):
            chart.render_line(y)
        assert calls == []  # nothing changed: the cached rows
        plot.history.add(301, {"loss_classifier": 5.0}, 5.0)
        plot.redraw()
        top = [chart.render_line(y).text for y in range(height)]
        assert calls == [(width, height)]
        assert top != rows


async def test_a_chart_that_cannot_be_drawn_says_why_instead_of_failing():
    app = _PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        plot, chart = app.query_one(LossPlot), app.query_one(_Chart)

        def broken(width: int, height: int):
            raise ValueError("odd data")

        plot.draw = broken
        plot.redraw()
        assert "cannot draw the plot: ValueError: odd data" in chart.render_line(0).text


async def test_messages_in_the_chart_pane_are_centred_and_wrapped_not_cut():
    app = _PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        plot, chart = app.query_one(LossPlot), app.query_one(_Chart)
        width = chart.size.width
        plot.show(LossHistory(), [])  # no step yet: the waiting text
        plot.waiting_text = "checking data 3,200/10,000 images"
        plot.redraw()
        row = next(chart.render_line(y).text for y in range(chart.size.height) if "checking" in chart.render_line(y).text)
        left = len(row) - len(row.lstrip())
        right = len(row) - len(row.rstrip())
        assert len(row) == width and abs(left - right) <= 1  # centred

        reason = "the run could not start: " + "a long reason " * 12 + "END"

        def broken(width: int, height: int):
            raise ValueError(reason)

        plot.draw = broken
        plot.redraw()
        shown = " ".join(chart.render_line(y).text.strip() for y in range(chart.size.height))
        assert "END" in shown and len(reason) > width  # wrapped onto more rows, nothing cut


def _styled_cells(strips) -> list[list[tuple[str, object]]]:
    return [[(char, segment.style) for segment in strip for char in segment.text] for strip in strips]


@pytest.mark.parametrize("size", [(57, 18), (120, 32), (30, 8)])
def test_chart_rows_cut_from_the_spans_match_rich_rendering_cell_for_cell(size):
    import io

    from rich.console import Console
    from rich.style import Style
    from textual.strip import Strip

    from cockpit.ui.widgets.loss_plot import chart_strips

    width, height = size
    plot = LossPlot(loss_history(500, decaying=True))
    plot.evals = [(100, 0.2), (400, 0.6)]  # AP50 on the right axis: a third kind of span
    drawn = plot.draw(width, height)
    base = Style(color="white", bgcolor="black")
    console = Console(width=width, color_system="truecolor", file=io.StringIO())
    lines = console.render_lines(drawn, console.options.update(width=width, height=None), pad=False)
    expected = [Strip(line).adjust_cell_length(width, base).apply_style(base) for line in lines[:height]]
    assert _styled_cells(chart_strips(drawn, width, height, base)) == _styled_cells(expected)
