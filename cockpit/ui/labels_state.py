"""What the Labels pane shows: label-assignment telemetry over time and the settings in force.

Pure Python (no Textual), folded from ``StepMetrics.labels``, ``RunStarted`` and
``ConfigChanged``. Each series keeps at most ``points`` records, so memory and drawing
cost stay bounded however long the run is. :func:`imbalance_lines` puts the numbers in
words a learner reads at a glance.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Iterable, Mapping

SPARK_SERIES: tuple[tuple[str, str], ...] = (
    ("roi_fg_frac", "fg share"),
    ("cls_accuracy", "accuracy"),
    ("fg_cls_accuracy", "fg accuracy"),
    ("false_negative", "fg as bg"),
    ("gt_no_anchor", "no anchor"),
    ("rpn_pos", "RPN pos"),
)
"""(telemetry key, label) of the small time series, top to bottom."""

LOSS_DEFAULTS = {"box": "smooth_l1", "box_beta": 1 / 9, "classifier": "ce", "focal_gamma": 2.0, "hard_negatives": False}
SAMPLER_DEFAULTS = {
    "rpn_batch_size_per_image": None, "rpn_positive_fraction": 0.5, "rpn_fg_iou_thresh": 0.7, "rpn_bg_iou_thresh": 0.3,
    "roi_batch_size_per_image": None, "roi_positive_fraction": 0.25, "roi_fg_iou_thresh": 0.5, "roi_bg_iou_thresh": 0.5,
}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class LabelsState:
    """Latest telemetry, bounded series of it, and the ``[loss]`` / ``[sampler]`` values."""

    def __init__(self, points: int = 240) -> None:
        self.series: dict[str, deque[tuple[int, float]]] = {key: deque(maxlen=points) for key, _ in SPARK_SERIES}
        self.latest: dict[str, float] = {}
        self.latest_iter: int | None = None
        self.loss: dict[str, Any] = dict(LOSS_DEFAULTS)
        self.sampler: dict[str, Any] = dict(SAMPLER_DEFAULTS)
        self.arch_batch: dict[str, int] = {}
        self.changed_at: int | None = None

    def add(self, iteration: int, labels: Mapping[str, float]) -> bool:
        if not labels:
            return False
        self.latest = {k: float(v) for k, v in labels.items() if isinstance(v, (int, float))}
        self.latest_iter = iteration
        for key, series in self.series.items():
            value = labels.get(key)
            if _finite(value):
                series.append((iteration, float(value)))
        return True

    def configure(self, config: Mapping[str, Any], environment: Mapping[str, Any] | None = None) -> None:
        """Settings from a RunStarted's config dict (and the model's own batch sizes)."""
        self.loss.update(config.get("loss", {}) or {})
        self.sampler.update(config.get("sampler", {}) or {})
        model = (environment or {}).get("model", {}) or {}
        self.arch_batch = {k: int(v) for k, v in model.items() if k.endswith("_batch_size_per_image") and _finite(v)}

    def patch(self, iteration: int, changes: Mapping[str, Any]) -> bool:
        touched = False
        for dotted, value in changes.items():
            section, _, key = dotted.partition(".")
            target = {"loss": self.loss, "sampler": self.sampler}.get(section)
            if target is not None:
                target[key] = value
                touched = True
        if touched:
            self.changed_at = iteration
        return touched

    def loss_kinds(self) -> dict[str, str]:
        """Loss term -> what it is, for the terms that are not torchvision's own loss."""
        kinds = {}
        box, beta = self.loss.get("box"), self.loss.get("box_beta")
        if box != "smooth_l1":
            kinds["loss_box_reg"] = str(box)
        elif _finite(beta) and abs(beta - 1 / 9) > 1e-9:
            kinds["loss_box_reg"] = f"β {beta:g}"
        classifier = "focal" if self.loss.get("classifier") == "focal" else ""
        if self.loss.get("hard_negatives"):
            classifier = "+".join(filter(None, [classifier, "OHEM"]))
        if classifier:
            kinds["loss_classifier"] = classifier
        return kinds

    def batch_size(self, stage: str) -> int | None:
        value = self.sampler.get(f"{stage}_batch_size_per_image")
        return int(value) if _finite(value) else self.arch_batch.get(f"{stage}_batch_size_per_image")

    def values(self, key: str) -> list[float]:
        return [value for _, value in self.series.get(key, ())]


def _ratio(a: float, b: float) -> str:
    if not (_finite(a) and _finite(b)) or a <= 0:
        return "no positive"
    return f"1 : {b / a:.0f}" if b >= a else f"{a / b:.0f} : 1" if b > 0 else "all positive"


def _num(value: Any, spec: str = ".0f") -> str:
    return format(value, spec) if _finite(value) else "–"


def _pct(value: Any, digits: int = 0) -> str:
    return f"{100 * value:.{digits}f}%" if _finite(value) else "–"


def imbalance_lines(state: LabelsState, compact: bool = False) -> list[str]:
    """The imbalance in words, e.g. "RPN: 7 positive : 249 negative anchors per image (1 : 36)".

    ``compact`` says the same in fewer columns (a narrow pane in the wide grid).
    """
    v = state.latest
    if not v:
        return ["No label assignment yet: the numbers arrive with the first logged training step."]
    target = state.sampler.get("roi_positive_fraction")
    rpn_ratio = _ratio(v.get("rpn_pos", math.nan), v.get("rpn_neg", math.nan))
    rpn_thresh = _num(state.sampler.get("rpn_fg_iou_thresh"), "g")
    size = f"~{_num(v.get('gt_size'))} px" if _finite(v.get("gt_size")) else ""
    if compact:
        return [
            f"RPN: {_num(v.get('rpn_pos'))} pos : {_num(v.get('rpn_neg'))} neg anchors/img ({rpn_ratio})",
            f"RoIs: {_num(v.get('roi_fg'))} fg : {_num(v.get('roi_bg'))} bg/img "
            f"({_pct(v.get('roi_fg_frac'), 1)}, target {_pct(target)})",
            f"no anchor at IoU ≥ {rpn_thresh}: {_pct(v.get('gt_no_anchor'))} of GT" + (f" ({size})" if size else ""),
            f"accuracy {_pct(v.get('cls_accuracy'))}, fg {_pct(v.get('fg_cls_accuracy'))}; "
            f"fg called bg {_pct(v.get('false_negative'))}",
        ]
    return [
        f"RPN: {_num(v.get('rpn_pos'))} positive : {_num(v.get('rpn_neg'))} negative anchors per image ({rpn_ratio})",
        f"box head: {_num(v.get('roi_fg'))} fg : {_num(v.get('roi_bg'))} bg RoIs "
        f"(fg {_pct(v.get('roi_fg_frac'), 1)}, target {_pct(target)})",
        f"GT boxes without an anchor at IoU ≥ {rpn_thresh}: {_pct(v.get('gt_no_anchor'))}" + (f" (GT {size})" if size else ""),
        f"box head accuracy {_pct(v.get('cls_accuracy'))}, on fg {_pct(v.get('fg_cls_accuracy'))}; "
        f"{_pct(v.get('false_negative'))} of fg called background",
    ]


def settings_lines(state: LabelsState, compact: bool = False) -> list[str]:
    """The sampler and loss settings in force, one line each."""
    s, loss = state.sampler, state.loss

    def stage(name: str, title: str, unit: str) -> str:
        batch = state.batch_size(name)
        batch_text = batch if batch is not None else "?"
        fg, bg = _num(s.get(f"{name}_fg_iou_thresh"), "g"), _num(s.get(f"{name}_bg_iou_thresh"), "g")
        share = _pct(s.get(f"{name}_positive_fraction"))
        if compact:
            return f"{title}: {batch_text}/img, ≤{share} pos, IoU ≥{fg} / <{bg}"
        return f"{title} sampler: {batch_text} {unit}/img, ≤{share} positive, fg IoU ≥ {fg}, bg < {bg}"

    box = str(loss.get("box"))
    if box == "smooth_l1":
        box += f" (β {_num(loss.get('box_beta'), '.3g')})"
    classifier = str(loss.get("classifier"))
    if classifier == "focal":
        classifier += f" (γ {_num(loss.get('focal_gamma'), 'g')})"
    hard = "on" if loss.get("hard_negatives") else "off"
    lines = [
        stage("rpn", "RPN", "anchors"),
        stage("roi", "RoI" if compact else "box head", "RoIs"),
        f"loss: {box}, {classifier}, OHEM {hard}" if compact
        else f"loss: box {box}, classifier {classifier}, hard negatives {hard}",
    ]
    if state.changed_at is not None:
        lines[-1] += f" (changed at it {state.changed_at})"
    return lines


SPARK_CHARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float], width: int, low: float | None = None, high: float | None = None) -> str:
    """The last values as block characters, one per column (bucket means when there are more)."""
    values = [v for v in values if _finite(v)]
    width = max(1, width)
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [
            sum(chunk) / len(chunk)
            for chunk in (values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)] for i in range(width))
        ]
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    span = high - low
    top = len(SPARK_CHARS) - 1
    return "".join(
        SPARK_CHARS[0 if span <= 0 else max(0, min(top, int(round((v - low) / span * top))))] for v in values
    )
