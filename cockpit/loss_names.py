"""What the four Faster R-CNN loss terms are called on screen, in logs and in reports.

torchvision's own ``loss_dict`` keys are the names a user knows from their training code
and from the lesson, so they are used wherever there is room. Narrow panes get short forms
that still say which stage a term belongs to: both RPN terms carry ``rpn_`` (a bare "rpn"
would not say which of the two it is).
"""

from __future__ import annotations

FULL_NAMES: dict[str, str] = {
    "loss_classifier": "loss_classifier",
    "loss_box_reg": "loss_box_reg",
    "loss_objectness": "loss_objectness",
    "loss_rpn_box_reg": "loss_rpn_box_reg",
    "loss": "total",
}
SHORT_NAMES: dict[str, str] = {
    "loss_classifier": "cls",
    "loss_box_reg": "box",
    "loss_objectness": "rpn_obj",
    "loss_rpn_box_reg": "rpn_box",
    "loss": "total",
}


def loss_label(name: str, short: bool = False) -> str:
    """The label of series ``name`` (torchvision's key, or its short form when ``short``)."""
    table = SHORT_NAMES if short else FULL_NAMES
    return table.get(name, name)
