"""Live diagnostic rules: pure functions from a :class:`MetricHistory` (or facts) to a Verdict.

Each rule answers NOT_CHECKED until it has seen enough, OK with the evidence it looked
at, or FLAGGED with a :class:`Flag` that says what to do. Thresholds live in
:class:`~cockpit.diagnostics.thresholds.Thresholds`; the defaults are tuned so that a healthy run -- including its
warm-up, where the loss may rise while the LR ramps up, and the early phase where
``loss_box_reg`` grows as proposals improve -- raises nothing.

Rules never look at wall-clock time or at a tensor, so each is unit-tested on a
hand-made history.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from cockpit.diagnostics.flags import CheckState, Verdict
from cockpit.diagnostics.history import SCORE_BIN_EDGES, EvalFacts, MetricHistory
from cockpit.diagnostics.thresholds import DEFAULT_THRESHOLDS, Thresholds  # re-exported: rules.Thresholds
from cockpit.diagnostics.verdicts import flagged as _flag
from cockpit.diagnostics.verdicts import not_checked as _wait
from cockpit.diagnostics.verdicts import ok as _ok
from cockpit.engine.events import Severity

LN2 = math.log(2.0)
"""Binary cross-entropy of a classifier that outputs 0.5 everywhere: the RPN at chance."""


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def ema(values: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average seeded with the first value (as TensorBoard's smoothing)."""
    out = np.empty_like(values, dtype=np.float64)
    if values.size == 0:
        return out
    acc = float(values[0])
    for i, v in enumerate(values):
        acc = alpha * float(v) + (1.0 - alpha) * acc
        out[i] = acc
    return out


def _post_warmup(history: MetricHistory, values: np.ndarray, warmup_iters: int) -> np.ndarray:
    """The tail of ``values`` (aligned with ``history.iters`` at the newest end) after warm-up."""
    iters = history.iters.values(values.size)
    return values[iters > warmup_iters]


# ------------------------------------------------------------------------- nonfinite_loss


def nonfinite_loss(history: MetricHistory, t: Thresholds = DEFAULT_THRESHOLDS) -> Verdict:
    """A NaN/Inf loss term or gradient: names the term(s) and the iteration.

    Stays FLAGGED for ``nonfinite_clear_after`` finite iterations after the last bad one,
    so a rewind that recovers shows as OK only once training is really going again.
    """
    rule = "nonfinite_loss"
    bad = history.last_nonfinite
    if bad is not None and history.last_iter - bad.iter < t.nonfinite_clear_after:
        terms = ", ".join(f"{k}={v}" for k, v in bad.terms.items()) or f"grad_norm={bad.grad_norm}"
        evidence = (
            f"iteration {bad.iter}: {terms} (lr {_fmt(bad.lr)}; "
            f"{history.nonfinite_count} non-finite step(s) so far)"
        )
        only_grad = not bad.terms
        cause = (
            "invalid target boxes (degenerate or huge coordinates) or a learning rate too high "
            "for this batch size" + ("; here only the gradient overflowed" if only_grad else "")
        )
        fix = (
            "rewind to the last good state and skip the batch, lower optim.lr (x0.1) or set "
            "optim.grad_clip (e.g. 10); run `cockpit check` to rule out broken boxes"
        )
        return _flag(rule, Severity.ERROR, evidence, cause, fix, iter=bad.iter, terms=dict(bad.terms))
    if history.amp_overflow_run >= t.amp_overflow_run:
        return _flag(
            rule,
            Severity.WARNING,
            f"{history.amp_overflow_run} consecutive AMP overflow skips (gradient Inf/NaN) up to "
            f"iteration {history.last_iter}",
            "the GradScaler keeps lowering its scale: the fp16 forward overflows, usually from a "
            "learning rate too high or invalid boxes",
            "lower optim.lr, set optim.grad_clip, or turn optim.amp off",
        )
    if history.steps == 0:
        return _wait(rule)
    if bad is not None:
        return _ok(rule, f"finite since iteration {bad.iter} ({history.nonfinite_count} non-finite step(s) earlier)")
    return _ok(rule, f"every step finite ({history.steps} so far)")


def nonfinite_from_step(
    iter: int, losses: Mapping[str, float], loss: float, grad_norm: float, lr: float = math.nan
) -> Verdict:
    """The same flag straight from one step's numbers (for the trainer's NaN pause)."""
    history = MetricHistory(capacity=1)
    history.record_step(iter, losses, loss, lr=lr, grad_norm=grad_norm, finite=False)
    return nonfinite_loss(history)


# ------------------------------------------------------------------------------ flat_loss


def flat_loss(history: MetricHistory, t: Thresholds = DEFAULT_THRESHOLDS) -> Verdict:
    """No foreground matched: ``loss_box_reg`` ~0 on batches that do carry boxes.

    With every label 0 torchvision's RoI head samples only background, so its box loss is
    exactly 0 from the first iteration while the total still falls (the classifier learns
    "always background"). That is the reliable signal, caught within ``no_fg_window``
    steps. A total loss that never fell over ``flat_min_steps`` is reported too.
    """
    rule = "flat_loss"
    box = history.term("loss_box_reg")
    total = history.total.values()
    if box.size:
        gt = history.gt_boxes.values(box.size)
        # Batches without any GT box legitimately have no box loss; NaN = count unknown.
        with_boxes = box[~(gt == 0)]
        recent = with_boxes[-t.no_fg_window :]
        if recent.size >= t.no_fg_window and float(np.max(np.abs(recent))) < t.no_fg_eps:
            trend = (
                f"; total loss {_fmt(history.initial_loss)} -> {_fmt(history.recent_loss())}"
                if history.steps >= 2 * history.INITIAL_WINDOW else ""
            )
            return _flag(
                rule,
                Severity.ERROR,
                f"loss_box_reg < {t.no_fg_eps:g} on the last {recent.size} batches with boxes "
                f"(up to iteration {history.last_iter}){trend}",
                "no foreground matched: all labels 0 (background)? classes/num_classes wrong? "
                "boxes in the wrong format?",
                "labels must be 1..K (0 is background; your first class must be 1) and boxes xyxy "
                "pixels; run `cockpit check` on this config",
            )
    if total.size == 0 or not box.size:
        return _wait(rule)
    if history.steps >= t.flat_min_steps:
        initial, recent = history.initial_loss, history.recent_loss()
        if math.isfinite(initial) and initial > 0 and recent >= t.flat_ratio * initial:
            return _flag(
                rule,
                Severity.WARNING,
                f"total loss {_fmt(initial)} at the start, {_fmt(recent)} now after "
                f"{history.steps} steps (loss_box_reg {_fmt(float(np.median(box[-20:])))})",
                "the model is not learning: learning rate far too low, frozen layers, or targets "
                "that carry no signal",
                "check optim.lr (torchvision: 0.02 per 16 images), model.trainable_backbone_layers "
                "and the labels (`cockpit check`)",
            )
    if box.size < t.no_fg_window:
        return _wait(rule, f"{box.size}/{t.no_fg_window} steps seen")
    return _ok(rule, f"loss_box_reg median {_fmt(float(np.median(box[-t.no_fg_window:])))} over the last {t.no_fg_window} steps")


# ----------------------------------------------------------------------------- rpn_chance


def rpn_chance(history: MetricHistory, *, warmup_iters: int = 0, t: Thresholds = DEFAULT_THRESHOLDS) -> Verdict:
    """``loss_objectness`` stuck near ln 2 (the RPN says 0.5 everywhere) for a long window."""
    rule = "rpn_chance"
    obj = _post_warmup(history, history.term("loss_objectness"), warmup_iters)
    if obj.size < t.rpn_window:
        return _wait(rule, f"{obj.size}/{t.rpn_window} post-warm-up steps")
    window = obj[-t.rpn_window :]
    share = float(np.mean(np.abs(window - LN2) < t.rpn_band))
    median = float(np.median(window))
    quarter = max(1, window.size // 4)
    # A slow but steady descent from ln 2 is a learning RPN (small objects, low LR), not chance.
    falling = float(np.median(window[:quarter])) - float(np.median(window[-quarter:])) > t.rpn_min_drop
    if share >= t.rpn_share and not falling:
        return _flag(
            rule,
            Severity.WARNING,
            f"loss_objectness median {median:.3f} (ln 2 = {LN2:.3f}) on {share:.0%} of the last "
            f"{t.rpn_window} steps, up to iteration {history.last_iter}",
            "the RPN cannot tell objects from background: learning rate too low, the backbone "
            "frozen, or ground-truth boxes that do not sit on the objects (wrong format or scale)",
            "check the boxes on a few images (`cockpit preview`), raise optim.lr, or unfreeze more "
            "backbone layers (model.trainable_backbone_layers)",
            median=median,
        )
    return _ok(rule, f"loss_objectness median {median:.3f} over the last {t.rpn_window} steps")


# ----------------------------------------------------------------------------- divergence


def divergence(history: MetricHistory, *, warmup_iters: int = 0, t: Thresholds = DEFAULT_THRESHOLDS) -> Verdict:
    """A spike (recent median >> the baseline) or a sustained rise of the smoothed loss.

    Only post-warm-up steps count: while the LR ramps up from lr/1000 a rising loss is
    expected, and the first post-warm-up steps make the baseline.
    """
    rule = "divergence"
    total = _post_warmup(history, history.total.values(), warmup_iters)
    if total.size < t.div_min_steps:
        return _wait(rule, f"{total.size}/{t.div_min_steps} post-warm-up steps")
    recent = total[-t.div_recent :]
    base = total[-(t.div_recent + t.div_baseline) : -t.div_recent]
    recent_med = float(np.median(recent))
    base_med = float(np.median(base)) if base.size else math.nan
    lr_now = history.lr.last()
    cause = "learning rate too high for this batch size (or a bad batch)"
    fix = (
        "lower optim.lr (x0.1; the torchvision recipe is 0.02 per 16 images, scale it with the "
        "batch) or set optim.grad_clip (e.g. 10)"
    )
    if base.size >= 20 and base_med > 0 and recent_med > t.div_spike_factor * base_med:
        return _flag(
            rule,
            Severity.WARNING,
            f"loss spiked: median {_fmt(recent_med)} over the last {recent.size} steps vs "
            f"{_fmt(base_med)} before (x{recent_med / base_med:.1f}) at iteration "
            f"{history.last_iter}, lr {_fmt(lr_now)}",
            cause,
            fix,
            kind="spike",
        )
    smooth = ema(total, t.div_ema_alpha)
    low = float(np.min(smooth))
    now = float(smooth[-1])
    span = t.div_rise_blocks * t.div_rise_block_len
    if smooth.size > span:
        marks = smooth[-1 :: -t.div_rise_block_len][: t.div_rise_blocks + 1]
        rising = bool(np.all(np.diff(marks[::-1]) > 0))
        if rising and now > t.div_rise_factor * low and now - low > t.div_rise_abs:
            return _flag(
                rule,
                Severity.WARNING,
                f"smoothed loss rose from {_fmt(low)} to {_fmt(now)} (x{now / max(low, 1e-12):.1f}) "
                f"and is still rising at iteration {history.last_iter}, lr {_fmt(lr_now)}",
                cause,
                fix,
                kind="rise",
            )
    return _ok(rule, f"smoothed loss {_fmt(now)} (lowest {_fmt(low)})")


# ------------------------------------------------------------------------ boxes_in_corner


def boxes_in_corner(
    boxes: Sequence[Sequence[float]] | np.ndarray,
    sizes: Sequence[Sequence[float]] | np.ndarray,
    *,
    source: str = "predicted",
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> Verdict:
    """Boxes crowded in the top-left corner: normalized [0, 1] coordinates treated as pixels.

    ``boxes`` is (N, 4) xyxy pixels; ``sizes`` is (N, 2) ``(width, height)`` of each box's
    image. A box is "in the corner" when its x2/y2 lie within ``corner_frac`` of the image
    (at least ``corner_min_px`` pixels).
    """
    rule = "boxes_in_corner"
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if b.shape[0] != s.shape[0]:
        raise ValueError("boxes and sizes must have the same length")
    keep = np.all(np.isfinite(b), axis=1) & np.all(np.isfinite(s), axis=1)
    b, s = b[keep], s[keep]
    n = b.shape[0]
    if n < t.corner_min_boxes:
        return _wait(rule, f"{n} {source} boxes (need {t.corner_min_boxes})")
    lim_x = np.maximum(t.corner_frac * s[:, 0], t.corner_min_px)
    lim_y = np.maximum(t.corner_frac * s[:, 1], t.corner_min_px)
    inside = (b[:, 2] <= lim_x) & (b[:, 3] <= lim_y)
    share = float(inside.mean())
    if share >= t.corner_share:
        biggest = float(np.max(b[:, 2:])) if n else 0.0
        return _flag(
            rule,
            Severity.ERROR,
            f"{int(inside.sum())} of {n} {source} boxes lie within the top-left "
            f"{t.corner_frac:.0%} of their images (largest coordinate {_fmt(biggest)} px)",
            "normalized coordinates (0-1) treated as pixels",
            "give boxes in pixels: multiply normalized x by the image width and y by the height "
            "(x1, y1, x2, y2 in pixels); `cockpit check` shows the offending files",
            share=share,
            source=source,
        )
    return _ok(rule, f"{share:.0%} of {n} {source} boxes in the top-left corner")


# ---------------------------------------------------------------------- no_val_detections


def _trained(history: MetricHistory, t: Thresholds) -> tuple[bool, str]:
    initial, recent = history.initial_loss, history.recent_loss()
    if not math.isfinite(recent):
        return False, "no training steps yet"
    desc = f"train loss {_fmt(initial)} -> {_fmt(recent)}"
    by_ratio = math.isfinite(initial) and initial > 0 and recent <= t.trained_ratio * initial
    return bool(by_ratio or recent <= t.trained_abs), desc


def histogram_text(counts: Sequence[int], edges: Sequence[float] = SCORE_BIN_EDGES) -> str:
    """Non-empty bins as ``0.10-0.15:12`` pairs (compact evidence)."""
    parts = [f"{edges[i]:.2f}-{edges[i + 1]:.2f}:{c}" for i, c in enumerate(counts) if c]
    return ", ".join(parts) if parts else "no scores at all"


def _score_data(facts: EvalFacts) -> dict[str, Any]:
    return {
        "score_histogram": {"edges": facts.bin_edges, "counts": list(facts.histogram)},
        "score_thresh": facts.score_thresh,
        "max_score": facts.max_score if math.isfinite(facts.max_score) else None,
        "num_scores": facts.num_scores,
        "iter": facts.iter,
    }


def no_val_detections(
    history: MetricHistory,
    *,
    box_score_thresh: float | None = None,
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> Verdict:
    """The latest full evaluation found no detection above ``eval.score_thresh`` although the
    train loss is low; the flag carries the raw score histogram (``data["score_histogram"]``
    with ``edges`` and ``counts``)."""
    rule = "no_val_detections"
    if not history.evals:
        return _wait(rule)
    facts = history.evals[-1]
    if facts.num_images == 0:
        return _wait(rule, "evaluation saw no images")
    if facts.detections_above > 0:
        return _ok(
            rule,
            f"{facts.detections_above} detections >= {facts.score_thresh:g} on {facts.num_images} val images",
        )
    trained, desc = _trained(history, t)
    ap50 = facts.metrics.get("AP50", math.nan)
    if math.isfinite(ap50) and ap50 >= t.trained_ap50:
        trained, desc = True, f"{desc}; AP50 {ap50:.3f} over the raw scores"
    if not trained:
        return _ok(rule, f"no detections yet, but the model is not trained yet ({desc})")
    hist = histogram_text(facts.histogram, facts.bin_edges)
    if facts.num_scores:
        known = math.isfinite(facts.max_score)
        cause = (
            f"eval.score_thresh = {facts.score_thresh:g} is above every score"
            + (f" (max {facts.max_score:.3f})" if known else "")
            + ". Not the classic forgotten model.eval(): the cockpit always evaluates in eval mode"
        )
        if known:
            suggested = max(0.05, math.floor(facts.max_score * 20) / 20)
            fix = f"lower eval.score_thresh (live-editable) to about {suggested:.2f}, or train longer"
        else:
            fix = "lower eval.score_thresh (live-editable) below where the scores sit, or train longer"
    else:
        bst = f" (model.box_score_thresh = {box_score_thresh:g})" if box_score_thresh is not None else ""
        cause = (
            "the model returns no boxes at all" + bst + ": it learned to call everything "
            "background (labels all 0? classes wrong?) or val images differ from train"
        )
        fix = "check flat_loss and `cockpit check`; compare a val image with a train image in the preview"
    return _flag(
        rule,
        Severity.WARNING,
        f"0 of {facts.num_scores} detections >= {facts.score_thresh:g} on {facts.num_images} val "
        f"images at iteration {facts.iter} ({desc}); scores: {hist}",
        cause,
        fix,
        **_score_data(facts),
    )


def eval_probe(history: MetricHistory, t: Thresholds = DEFAULT_THRESHOLDS) -> Verdict:
    """The last ``probe_consecutive`` eval-mode probes found no detection although the
    train loss is low: "no detections" caught long before the next full evaluation."""
    rule = "eval_probe"
    if not history.probes:
        return _wait(rule)
    last = list(history.probes)[-t.probe_consecutive :]
    latest = last[-1]
    if latest.detections_above > 0:
        return _ok(rule, f"{latest.detections_above} detections on {latest.num_images} probe images at iteration {latest.iter}")
    trained, desc = _trained(history, t)
    if len(last) < t.probe_consecutive or any(p.detections_above > 0 for p in last) or not trained:
        return _ok(rule, f"no probe detections at iteration {latest.iter} yet ({desc})")
    return _flag(
        rule,
        Severity.WARNING,
        f"0 detections >= {latest.score_thresh:g} on {latest.num_images} probe images in the "
        f"last {len(last)} probes (iteration {latest.iter}; {desc}); scores: {histogram_text(latest.histogram, latest.bin_edges)}",
        "scores stay below eval.score_thresh" if latest.num_scores else "the model predicts only background",
        "lower eval.score_thresh if the scores sit just below it; otherwise check the labels (`cockpit check`)",
        **_score_data(latest),
    )


# ------------------------------------------------------------------------------- cuda_oom


def cuda_oom(facts: Mapping[str, Any]) -> Verdict:
    """A CUDA out-of-memory, with what was running.

    ``facts``: ``iter``, ``batch_size``, ``image_size`` ((h, w) or the resize side),
    memory either as ``*_mb`` keys (the trainer's memory probe) or a ``memory`` dict of GiB,
    optionally ``recovered`` (False: the trainer gave up -> error), ``new_batch_size``,
    ``accumulation``. Without ``recovered`` it is a warning: recovery is being attempted.
    """
    rule = "cuda_oom"
    batch = int(facts.get("batch_size") or 0)
    size = facts.get("image_size")
    side = max(size) if isinstance(size, (list, tuple)) and size else size
    mem = dict(facts.get("memory") or {})
    # The trainer's memory probe puts ``allocated_mb``, ``reserved_mb``, ... at the top level.
    mem.update({k: v for k, v in facts.items() if k.endswith("_mb")})
    mem_text = ", ".join(
        f"{k.removesuffix('_mb')} {float(v):.0f} MB" if k.endswith("_mb") else f"{k} {_fmt(float(v))} GiB"
        for k, v in mem.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    )
    parts = [f"iteration {facts.get('iter', '?')}", f"batch_size {batch}"]
    if size:
        parts.append(f"images {'x'.join(str(int(v)) for v in size) if isinstance(size, (list, tuple)) else size} px")
    if mem_text:
        parts.append(mem_text)
    evidence = "CUDA out of memory at " + ", ".join(parts)
    recovered = facts.get("recovered", True) is not False
    if recovered and facts.get("new_batch_size"):
        evidence += (
            f"; recovered: batch_size {facts['new_batch_size']} with gradient accumulation "
            f"x{facts.get('accumulation', '?')} (same effective batch)"
        )
    if batch > 1 and side and float(side) >= 600:
        cause = f"batch_size>1 on {int(float(side))}px images: activations of {batch} large images do not fit"
    else:
        cause = "the model's activations for this batch do not fit (batch_size>1 on 800px images is the usual cause)"
    fix = (
        "halve data.batch_size (the cockpit does this itself and doubles gradient accumulation), "
        "lower model.min_size / model.max_size, or turn on optim.amp"
    )
    return _flag(
        rule,
        Severity.WARNING if recovered else Severity.ERROR,
        evidence,
        cause,
        fix,
        **{k: v for k, v in facts.items() if isinstance(v, (int, float, str, bool, list, dict)) or v is None},
    )


# ------------------------------------------------------------------------ data_bottleneck


def data_bottleneck(
    history: MetricHistory,
    *,
    num_workers: int | None = None,
    previous: CheckState | None = None,
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> Verdict:
    """Data-wait time above ~30% of iteration time (``iter_time`` includes the wait).

    ``previous`` gives hysteresis: a FLAGGED row clears only below ``data_share_off``, so
    it does not flap around the threshold.
    """
    rule = "data_bottleneck"
    data = history.data_time.values()
    it = history.iter_time.values()
    usable = max(0, min(data.size, history.steps - t.data_skip))
    if usable < t.data_window:
        return _wait(rule, f"{usable}/{t.data_window} steps after start-up")
    d = data[-t.data_window :]
    i = it[-t.data_window :]
    ok = np.isfinite(d) & np.isfinite(i)
    total_iter = float(i[ok].sum())
    if total_iter <= 0:
        return _wait(rule, "no iteration times")
    share = float(d[ok].sum()) / total_iter
    limit = t.data_share_off if previous == CheckState.FLAGGED else t.data_share_on
    if share > limit:
        workers = f"data.num_workers = {num_workers}" if num_workers is not None else "data.num_workers"
        if num_workers == 0:
            fix = "set data.num_workers to 2-8 (0 loads every batch in the training thread)"
        else:
            fix = f"raise data.num_workers (now {num_workers})" if num_workers is not None else "raise data.num_workers"
            fix += "; if it is already near the CPU count, make decoding cheaper (smaller images, faster disk)"
        return _flag(
            rule,
            Severity.WARNING,
            f"waiting for data {share:.0%} of iteration time over the last {d.size} steps "
            f"(mean {float(np.mean(d[ok])):.3f}s of {float(np.mean(i[ok])):.3f}s)",
            f"the loader cannot keep up with the model ({workers})",
            fix,
            share=share,
        )
    return _ok(rule, f"data wait {share:.0%} of iteration time")
