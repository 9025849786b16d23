"""The report's label-assignment plot, validation-loss table and loss names (issue 12).

Same conventions as ``plots.py`` (matplotlib's Agg through its object API, imported
lazily; at most ``MAX_POINTS`` points per series): foreground / background sampling and
the box head's accuracies over iterations; the table of validation losses (``plots.py``
marks them on the loss panels); which loss each term is.
"""

from __future__ import annotations

from cockpit.report.plots import _COLORS, _new_figure, _style, decimate, plot_width, to_png
from cockpit.report.rundir import RunDir, finite


VAL_LOSS_KEYS = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss")


def val_loss_rows(run: RunDir) -> list[list[str]]:
    """One table row per evaluation with a val loss: the iteration and each term."""
    rows = []
    for record in run.evals:
        values = record.get("val_loss") or {}
        if isinstance(values, dict) and values:
            numbers = [finite(values.get(key)) for key in VAL_LOSS_KEYS]
            rows.append([str(record.get("iter", ""))] + ["n/a" if v is None else f"{v:.4f}" for v in numbers])
    return rows


def loss_names(run: RunDir) -> str:
    """Which loss each box-head term is in this run, in words (for captions)."""
    config = run.config
    loss = getattr(config, "loss", None)
    if loss is None:
        return "loss_box_reg is torchvision's smooth L1 and loss_classifier its cross-entropy."
    box = {"smooth_l1": f"smooth L1 (beta {loss.box_beta:.3g})", "l1": "L1"}.get(
        loss.box, f"{loss.box.upper()} (torchvision.ops, on decoded boxes)"
    )
    classifier = "cross-entropy" if loss.classifier == "ce" else f"softmax focal loss (gamma {loss.focal_gamma:g})"
    ohem = "; background RoIs picked by loss (OHEM)" if loss.hard_negatives else ""
    return f"loss_box_reg is {box}; loss_classifier is {classifier}{ohem}. The RPN terms are torchvision's."


def labels_plot(run: RunDir) -> bytes | None:
    """Sampled fg / bg RoIs and anchors per image, and the box head's accuracies, over iterations."""
    series = {key: run.column(key) for key in ("roi_fg", "roi_bg", "rpn_pos", "roi_fg_frac", "cls_accuracy",
                                                 "fg_cls_accuracy", "false_negative", "gt_no_anchor")}
    if not any(len(xs) for xs, _ in series.values()):
        return None
    figure, axes = _new_figure(11, 3.6, 1, 2)
    left, right = axes[0][0], axes[0][1]
    _style(left, "sampled per image (log scale)", ylabel="count")
    for index, (key, label) in enumerate((("roi_fg", "box head fg RoIs"), ("roi_bg", "box head bg RoIs"),
                                          ("rpn_pos", "RPN positive anchors"))):
        xs, ys = series[key]
        if len(xs):
            line = decimate(xs, ys, plot_width(left))
            left.plot(line.x, line.y, color=_COLORS[index], linewidth=1.3, label=label)
    if left.lines:
        left.set_yscale("log")
        left.legend(fontsize=7, loc="center right")
    _style(right, "shares and accuracies", ylabel="fraction")
    for index, (key, label) in enumerate((("roi_fg_frac", "fg share of sampled RoIs"), ("cls_accuracy", "accuracy"),
                                          ("fg_cls_accuracy", "fg accuracy"), ("false_negative", "fg called bg"),
                                          ("gt_no_anchor", "GT without a good anchor"))):
        xs, ys = series[key]
        if len(xs):
            line = decimate(xs, ys, plot_width(right))
            right.plot(line.x, line.y, color=_COLORS[index % len(_COLORS)], linewidth=1.3, label=label)
    target = getattr(getattr(run.config, "sampler", None), "roi_positive_fraction", None)
    if target is not None:
        right.axhline(target, color=_COLORS[0], linestyle=":", linewidth=1, label="fg target")
    right.set_ylim(0, 1)
    if right.lines:
        right.legend(fontsize=7, loc="center right")
    return to_png(figure)
