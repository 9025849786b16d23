"""The Labels pane, the preview's assignment overlay and the validation-loss markers."""

from __future__ import annotations

from cockpit.engine.commands import RequestPreview
from cockpit.engine.events import ConfigChanged
from cockpit.ui.labels_state import LabelsState, imbalance_lines, settings_lines, sparkline
from cockpit.ui.widgets.preview_panel import ANCHOR_RGB, UNMATCHED_RGB, overlay_layers
from fake_engine import T0, overlay_event
from ui_support import settle


def test_imbalance_in_words():
    state = LabelsState()
    state.add(10, {"rpn_pos": 7.0, "rpn_neg": 249.0, "roi_fg": 12.0, "roi_bg": 500.0, "roi_fg_frac": 12 / 512,
                   "gt_no_anchor": 0.5, "cls_accuracy": 0.95, "fg_cls_accuracy": 0.4, "false_negative": 0.5})
    lines = imbalance_lines(state)
    assert lines[0] == "RPN: 7 positive : 249 negative anchors per image (1 : 36)"
    assert lines[1] == "box head: 12 fg : 500 bg RoIs (fg 2.3%, target 25%)"
    assert "50%" in lines[2] and "IoU ≥ 0.7" in lines[2]


def test_settings_follow_run_start_and_live_patches():
    state = LabelsState()
    state.configure({"loss": {"box": "smooth_l1"}, "sampler": {"roi_positive_fraction": 0.25}},
                    {"model": {"rpn_batch_size_per_image": 128, "roi_batch_size_per_image": 64}})
    assert "64 RoIs/img" in settings_lines(state)[1] and "128 anchors/img" in settings_lines(state)[0]
    assert state.patch(40, {"loss.box": "giou", "sampler.roi_batch_size_per_image": 256, "optim.lr": 0.1})
    lines = settings_lines(state)
    assert "256 RoIs/img" in lines[1] and "box giou" in lines[2] and "changed at it 40" in lines[2]
    assert not state.patch(41, {"optim.lr": 0.2})


def test_sparkline_fits_the_width_and_scale():
    assert sparkline([0.0, 0.5, 1.0], 10, 0.0, 1.0) == "▁▅█"
    assert len(sparkline([float(i) for i in range(1000)], 12)) == 12
    assert sparkline([float("nan")], 5) == ""


def test_overlay_layers_highlight_gt_without_an_anchor():
    overlay = overlay_event(100)
    layers = overlay_layers(overlay, "anchors")
    colours = {colour: boxes for boxes, colour, _ in layers}
    assert colours[UNMATCHED_RGB] == [overlay.gt_boxes[2]]
    assert colours[ANCHOR_RGB] == overlay.positive_anchors
    assert overlay_layers(overlay, "off") == []


async def test_labels_pane_shows_the_live_numbers(make_app):
    app, fake = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        assert app.query_one("#labels").region.width > 0
        text = str(app.query_one("#labels .words").render())
        assert "RPN:" in text and "negative anchors per image" in text and "target 25%" in text
        fake.emit(ConfigChanged(iter=240, config={"loss": {"classifier": "focal"}}, changed=["loss.classifier"],
                                time=T0 + 60))
        await settle(pilot)
        assert "classifier focal" in str(app.query_one("#labels .settings").render())
        # The Losses pane says which loss the classifier term now is.
        assert "cls(focal)" in str(app.loss_plot.legend())


async def test_a_cycles_the_overlay_and_asks_for_a_fresh_one(make_app):
    app, fake = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        panel = app.preview_panel
        await pilot.press("a")
        assert panel.overlay_mode == "gt" and not fake.commands
        await pilot.press("a")
        await settle(pilot)
        assert panel.overlay_mode == "anchors"
        assert isinstance(fake.commands[-1], RequestPreview) and fake.commands[-1].predict
        assert "positive anchors" in str(app.query_one("#preview .caption").render())
        await pilot.press("a", "a")
        assert panel.overlay_mode == "off"


async def test_val_loss_markers_toggle(make_app):
    app, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        plot = app.loss_plot
        assert [it for it, _ in plot.val_losses] == [100, 200]
        assert "×" in plot.draw(100, 20).plain
        await pilot.press("1", "l")
        assert not plot.show_val and "×" not in plot.draw(100, 20).plain
