"""Work beside the training step: evaluation, previews, and the pre-flight verdicts.

Rank 0 alone does these (the other ranks wait for it in their next collective). Each
publishes its result as an event; evaluation also hands its big facts (every raw score,
a sample of boxes) to the hooks' ``after_eval``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cockpit.engine import rundir
from cockpit.engine.events import EvalResult, RunWarning, WarningCategory
from cockpit.engine.preflight_flags import preflight_flags
from cockpit.runfiles import write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.trainer import Trainer


class SideJobs:
    """Evaluation, previews and pre-flight flags for one trainer."""

    def __init__(self, trainer: "Trainer", preflight: dict | None):
        self._trainer = trainer
        self._preflight = preflight
        self.preview_index = 0
        """The val image the preview pane shows; evaluations refresh its predictions."""
        self.last_eval_iter = -1
        self.evaluations = 0

    def evaluate(self) -> EvalResult | None:
        from cockpit.engine.evaluation import evaluate
        from cockpit.engine.val_loss import validation_loss

        t = self._trainer
        if t.val_set is None or t.parts.val_loader is None or not t.is_main:
            return None
        evaluation = evaluate(
            t.model, t.parts.val_loader, t.val_set, t.device, t.config.eval.score_thresh, progress=t.publish
        )
        self.evaluations += 1
        self.last_eval_iter = t.iteration
        for path, message in evaluation.skipped:
            t.publish(RunWarning(f"evaluation skipped unreadable val image {path}: {message}", iter=t.iteration,
                                 category=WarningCategory.SKIPPED_SAMPLE, details={"path": path, "error": message}))
        predictions = t.run_dir / rundir.PREDICTIONS / f"eval-iter{t.iteration:06d}.json"
        predictions.parent.mkdir(exist_ok=True)
        write_atomic(predictions, json.dumps(evaluation.results))
        result = EvalResult(
            iter=t.iteration,
            epoch=t.epoch_number,
            metrics=evaluation.metrics,
            per_class=evaluation.per_class,
            detections_per_image=evaluation.detections_per_image,
            images_without_detections=evaluation.images_without_detections,
            num_images=evaluation.num_images,
            score_histogram=evaluation.score_histogram,
            predictions_path=str(predictions),
            seconds=evaluation.seconds,
            val_loss=validation_loss(t.model, t.parts.val_loader, t.device, seed=t.config.run.seed),
        )
        t.publish(result)
        extra = {"raw_scores": evaluation.raw_scores, "pred_boxes": evaluation.sample_boxes}
        t.call_hooks("after_eval", result, extra)
        ap = evaluation.metrics.get("AP", -1.0)
        if ap > t.best_ap:
            t.best_ap = ap
            t.checkpoints.save(f"best AP {ap:.3f}", best=True)
        if len(t.val_set) > 0:
            self.publish_preview(self.preview_index, predict=True)
        return result

    def publish_preview(self, index: int, predict: bool, split: str = "val") -> None:
        from cockpit.engine.preview import make_preview

        t = self._trainer
        if not t.is_main:
            return
        dataset = t.val_set if split == "val" else t.train_set
        if split == "val":
            self.preview_index = index
        try:
            event = make_preview(
                t.model if predict else None,
                dataset,
                index,
                device=t.device,
                iteration=t.iteration,
                score_thresh=t.config.eval.score_thresh,
                out_dir=t.run_dir / rundir.PREVIEWS,
                split=split,
            )
        except Exception as error:  # noqa: BLE001 - a preview is a side job: skip and name it, as the loaders do
            path = dataset.image_path(index) if hasattr(dataset, "image_path") else None
            t.publish(RunWarning(
                f"preview of {split} #{index} skipped ({path or 'no path'}): {type(error).__name__}: {error}",
                iter=t.iteration, category=WarningCategory.SKIPPED_SAMPLE,
                details={"index": index, "path": path, "error": f"{type(error).__name__}: {error}"},
            ))
            return
        t.publish(event)
        self._publish_overlay(dataset, index, split)

    def _publish_overlay(self, dataset, index: int, split: str) -> None:
        """The preview image's label assignment under the model as it is now (the ``a`` overlay)."""
        from cockpit.engine.overlay import make_overlay

        t = self._trainer
        try:
            t.publish(make_overlay(t.model, dataset, index, device=t.device, iteration=t.iteration, split=split,
                                   seed=t.config.run.seed))
        except Exception as error:  # noqa: BLE001 - an overlay is a side job: the preview stands without it
            t.publish(RunWarning(f"assignment overlay of {split} #{index} not drawn: {type(error).__name__}: {error}",
                                 iter=t.iteration))

    def publish_preflight(self) -> None:
        """The pre-flight verdicts as flag events, so the checklist shows them from the start."""
        t = self._trainer
        for event in preflight_flags((self._preflight or {}).get("verdicts", []), t.iteration):
            t.publish(event)
