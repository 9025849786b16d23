"""The headless printer's short form of the label-assignment numbers and the val loss."""

from __future__ import annotations

import io
import math

from cockpit.engine.events import ConfigChanged, EvalResult, StepMetrics
from cockpit.engine.headless import HeadlessPrinter, format_labels


def test_step_line_ends_with_the_short_form():
    labels = {"rpn_pos": 3.4, "rpn_neg": 124.6, "roi_fg": 12.2, "roi_bg": 51.8, "roi_fg_frac": 0.19,
              "cls_accuracy": 0.893, "fg_cls_accuracy": 0.54, "gt_no_anchor": 0.6}
    printer = HeadlessPrinter(io.StringIO())
    line = printer.format(StepMetrics(iter=10, epoch=1, lr=0.01, losses={"loss_classifier": 0.5}, loss=0.5,
                                      iter_time=0.1, labels=labels))
    assert line.endswith("| rpn 3:125 fg 12:52 (19.0%) acc 0.89/0.54 noanc 0.60")


def test_undefined_numbers_print_as_a_dash_and_absent_ones_not_at_all():
    assert "acc 0.90/-" in format_labels({"cls_accuracy": 0.9, "fg_cls_accuracy": math.nan})
    assert format_labels({}) == ""


def test_eval_and_settings_lines():
    printer = HeadlessPrinter(io.StringIO())
    line = printer.format(EvalResult(iter=30, epoch=1, metrics={"AP": 0.1}, per_class={}, val_loss={"loss": 1.25}))
    assert line.endswith("val loss 1.2500")
    changed = printer.format(ConfigChanged(iter=7, config={"loss": {"box": "giou"}}, changed=["loss.box"]))
    assert changed == "config changed at it 7: loss.box=giou"
