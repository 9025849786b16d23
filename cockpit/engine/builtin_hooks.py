"""The hooks every run has: metric records (with memory), periodic evaluation, epoch checkpoints."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cockpit.engine.events import RunWarning, StepMetrics, WarningCategory
from cockpit.engine.hooks import Hook, StepOutcome
from cockpit.engine.memory import sample

if TYPE_CHECKING:  # pragma: no cover
    from cockpit.engine.trainer import Trainer


class MetricsHook(Hook):
    """Publishes a ``StepMetrics`` every ``run.log_every`` iterations.

    Loss terms, iteration and data times are means over the iterations since the previous
    record (finite values only), so no spike between two records goes unseen in the mean
    and a record costs O(1) per iteration to build.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._count = 0
        self._steps = 0
        self._sums: dict[str, float] = {}
        self._time = 0.0
        self._data = 0.0
        self._grad = 0.0
        self._labels: dict[str, tuple[float, int]] = {}

    def after_step(self, trainer: "Trainer", outcome: StepOutcome) -> None:
        self._steps += 1
        self._time += outcome.iter_time
        self._data += outcome.data_time
        if outcome.finite:
            self._count += 1
            for name, value in outcome.losses.items():
                self._sums[name] = self._sums.get(name, 0.0) + value
            if math.isfinite(outcome.grad_norm):
                self._grad += outcome.grad_norm
            for name, value in outcome.labels.items():
                # NaN = undefined this step (e.g. no foreground RoI): left out of the mean.
                if math.isfinite(value):
                    total, n = self._labels.get(name, (0.0, 0))
                    self._labels[name] = (total + value, n + 1)
                else:
                    self._labels.setdefault(name, (0.0, 0))
        elif not self._count:
            # A window that only saw non-finite steps still gets a record, so the NaN shows.
            self._sums = dict(outcome.losses)
            self._count = 1
        if outcome.iter % trainer.config.run.log_every != 0:
            return
        steps = self._steps
        losses = {name: total / self._count for name, total in self._sums.items()}
        trainer.publish(
            StepMetrics(
                iter=outcome.iter,
                epoch=outcome.epoch,
                lr=outcome.lr,
                losses=losses,
                loss=sum(losses.values()),
                iter_time=self._time / steps,
                data_time=self._data / steps,
                grad_norm=self._grad / self._count,
                memory=sample(trainer.device),
                batch_size=outcome.batch_size,
                cpu=dict(outcome.cpu or {}),
                labels={name: total / n if n else math.nan for name, (total, n) in self._labels.items()},
            )
        )
        self._reset()


class EvalHook(Hook):
    """Evaluates every ``eval.every_epochs`` epochs (the end of training is the trainer's)."""

    def after_epoch(self, trainer: "Trainer", epoch: int) -> None:
        every = trainer.config.eval.every_epochs
        if every > 0 and epoch % every == 0 and epoch < trainer.config.run.epochs:
            trainer.evaluate()


class CheckpointHook(Hook):
    """Saves ``last.pt`` at the end of every epoch, written while the next epoch trains."""

    def after_epoch(self, trainer: "Trainer", epoch: int) -> None:
        if epoch < trainer.config.run.epochs:
            trainer.save_checkpoint(f"end of epoch {epoch}", background=True)


class EvalProbeHook(Hook):
    """Every ``every`` iterations, predicts on a few pinned val images in eval mode.

    Cheap (2 images, ``eval()`` + ``no_grad``, back to ``train()``), so "no detections in
    eval mode" is caught long before the next full evaluation. The scores go to every
    hook's ``on_probe`` (the diagnostics judge them).
    """

    def __init__(self, every: int = 100, images: int = 2):
        self.every = every
        self.images = images
        self._named: set[int] = set()

    def after_step(self, trainer: "Trainer", outcome: StepOutcome) -> None:
        if outcome.iter % self.every or trainer.val_set is None or len(trainer.val_set) == 0 or not outcome.finite:
            return
        import torch

        count = min(self.images, len(trainer.val_set))
        images = []
        for index in range(count):
            try:
                images.append(trainer.val_set[index][0].to(trainer.device))
            except Exception as error:  # noqa: BLE001 - a val file gone mid-run: probe the others, name it once
                if index not in self._named:
                    self._named.add(index)
                    path = trainer.val_set.image_path(index)
                    trainer.publish(RunWarning(
                        f"eval probe skips val #{index} ({path}): {type(error).__name__}: {error}",
                        iter=outcome.iter, category=WarningCategory.SKIPPED_SAMPLE,
                        details={"index": index, "path": path, "error": f"{type(error).__name__}: {error}"},
                    ))
        if not images:
            return
        count = len(images)
        model = trainer.model
        model.eval()
        try:
            with torch.no_grad():
                outputs = model(images)
        finally:
            model.train()
        scores = torch.cat([o["scores"] for o in outputs]).tolist()
        facts = {"iter": outcome.iter, "num_images": count, "scores": scores}
        trainer.call_hooks("on_probe", facts)


def default_hooks() -> list[Hook]:
    return [MetricsHook(), EvalHook(), CheckpointHook(), EvalProbeHook()]
