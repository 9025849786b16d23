"""Every live-rule threshold in one place: :class:`Thresholds` and the shipped tuning.

The defaults are tuned so that a healthy run -- including its warm-up, where the loss
may rise while the LR ramps up, and the early phase where ``loss_box_reg`` grows as
proposals improve -- raises nothing. :mod:`cockpit.diagnostics.rules` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Every live-rule threshold in one place (the defaults are the shipped tuning)."""

    # flat_loss / no foreground
    no_fg_window: int = 20
    """Steps with ground-truth boxes whose ``loss_box_reg`` must all be ~0 (label-0 bug: it is exactly 0)."""
    no_fg_eps: float = 1e-4
    """torchvision adds the GT boxes to the proposals, so any real foreground gives a box loss far above this."""
    flat_min_steps: int = 300
    """Steps before "total loss never fell" can be judged."""
    flat_ratio: float = 0.95
    """Recent loss at or above this share of the initial loss counts as "not falling"."""

    # rpn_chance
    rpn_window: int = 200
    """Post-warm-up steps of ``loss_objectness`` examined."""
    rpn_band: float = 0.03
    """Distance from ln 2 that counts as "at chance"."""
    rpn_share: float = 0.9
    """Share of the window that must sit in the band."""
    rpn_min_drop: float = 0.01
    """A window whose last quarter sits this much below its first is still learning (slowly)."""

    # divergence
    div_min_steps: int = 30
    """Post-warm-up steps needed before divergence is judged (warm-up rises are normal)."""
    div_recent: int = 5
    """Recent steps whose median is compared with the baseline (a median: one bad batch is not a spike)."""
    div_baseline: int = 50
    """Steps before the recent ones that form the baseline."""
    div_spike_factor: float = 4.0
    div_rise_factor: float = 2.0
    """Smoothed loss above this multiple of its post-warm-up minimum and still rising."""
    div_rise_abs: float = 0.2
    """... and at least this much above it (tiny losses double from noise)."""
    div_ema_alpha: float = 0.05
    div_rise_blocks: int = 3
    div_rise_block_len: int = 10

    # data_bottleneck
    data_skip: int = 20
    """First steps ignored: worker start-up makes the first batches slow."""
    data_window: int = 50
    data_share_on: float = 0.30
    data_share_off: float = 0.20
    """Hysteresis: once flagged, stays flagged until the share drops below this."""

    # no_val_detections / eval_probe
    trained_ratio: float = 0.6
    """Train loss at or below this share of the initial loss counts as "trained"."""
    trained_abs: float = 0.5
    """... or a total loss at or below this (a resumed run has no initial loss to compare)."""
    trained_ap50: float = 0.1
    """... or an AP50 at or above this: COCO AP ranks every raw detection, so a model whose
    boxes are right but whose scores all sit below ``eval.score_thresh`` still earns it."""
    probe_consecutive: int = 2

    # boxes_in_corner
    corner_frac: float = 0.05
    corner_min_px: float = 2.0
    corner_share: float = 0.9
    corner_min_boxes: int = 5

    # nonfinite_loss
    nonfinite_clear_after: int = 50
    """Finite iterations after the last NaN/Inf before the row returns to OK."""
    amp_overflow_run: int = 10
    """Consecutive AMP overflow skips that are no longer the GradScaler's normal search."""


DEFAULT_THRESHOLDS = Thresholds()
