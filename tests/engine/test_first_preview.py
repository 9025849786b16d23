"""The first preview shows a val image with objects (the sample's val #0 has none)."""

from __future__ import annotations

import torch

from cockpit.engine.events import PreviewReady
from cockpit.engine.preview import first_with_objects
from cockpit.engine.trainer import Trainer
from support import Recorder


class Targets:
    def __init__(self, counts):
        self.counts = counts

    def __len__(self):
        return len(self.counts)

    def raw_target(self, index):
        if self.counts[index] is None:
            raise OSError("unreadable")
        return {"boxes": torch.zeros((self.counts[index], 4))}


def test_first_with_objects_skips_empty_and_unreadable_samples():
    assert first_with_objects(Targets([0, None, 0, 2, 1])) == 3
    assert first_with_objects(Targets([0, 0])) == 0  # none has objects: the first one
    assert first_with_objects(Targets([0, 0, 3]), limit=2) == 0


def test_the_run_starts_on_the_first_val_image_with_objects(sample_config):
    trainer = Trainer(sample_config("run.max_iters=1"))
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    try:
        first = events.wait_for(lambda e: isinstance(e, PreviewReady))
    finally:
        trainer.close()
    assert len(trainer.val_set.raw_target(0)["boxes"]) == 0  # the sample's val #0 is empty
    assert first.index == 1 and first.gt_boxes
