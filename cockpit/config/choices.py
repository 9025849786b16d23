"""The names the [loss] section accepts, and the one check that refuses anything else.

Kept apart from the engine so the config can validate them without importing torch.
"""

from __future__ import annotations

import difflib

BOX_LOSSES: tuple[str, ...] = ("smooth_l1", "l1", "giou", "diou", "ciou")
"""Box head regression losses: torchvision's smooth L1, plain L1, and the torchvision.ops IoU losses."""
CLASSIFIER_LOSSES: tuple[str, ...] = ("ce", "focal")
"""Box head classification losses: torchvision's cross-entropy, or a softmax focal loss."""


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``choices``; else a ValueError naming them (and the closest)."""
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ValueError(f"unknown {what} {value!r}{hint}; choose one of: {', '.join(choices)}")
