"""``run.tensorboard = true``: TensorBoard event files written live, beside metrics.jsonl.

A listener on the engine's event stream like the run-directory writer: the bus calls it
on its own thread (``engine/bus.py``), so writing and flushing never happen in the
training loop. Tags and values are those of ``cockpit export --tensorboard``
(:mod:`cockpit.export.tags`), so a live run and an exported one line up in TensorBoard.
"""

from __future__ import annotations

from pathlib import Path

from cockpit.engine.events import EvalResult, Event, RunFinished, RunStarted, StepMetrics
from cockpit.export.tags import eval_scalars, flatten_step, train_scalars
from cockpit.export.tensorboard import TensorBoardWriter, config_markdown


class TensorBoardListener:
    """Writes step and eval events of one run into ``run_dir`` as TensorBoard events."""

    def __init__(self, run_dir: str | Path, flush_secs: float = 10.0) -> None:
        self.run_dir = Path(run_dir)
        self._writer = TensorBoardWriter(self.run_dir, flush_secs=flush_secs)
        self._closed = False

    def __call__(self, event: Event) -> None:
        if self._closed:
            return
        if isinstance(event, StepMetrics):
            self._writer.scalars(event.iter, train_scalars(flatten_step(event.to_dict())), event.time)
        elif isinstance(event, EvalResult):
            record = {"eval": {**event.metrics, "per_class": event.per_class},
                      "detections_per_image": event.detections_per_image}
            extra = getattr(event, "val_loss", None)
            if extra is not None:
                record["val_loss"] = extra
            self._writer.scalars(event.iter, eval_scalars(record), event.time)
            self._writer.flush()  # an evaluation is worth seeing at once
        elif isinstance(event, RunStarted):
            self._writer.text("config", config_markdown(_toml(event.config)), step=event.start_iter, wall_time=event.time)
        elif isinstance(event, RunFinished):
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()


def _toml(config: dict) -> str:
    import tomli_w

    try:
        return tomli_w.dumps(config)
    except (TypeError, ValueError):  # a None value or an odd type: still show the config
        return repr(config)
